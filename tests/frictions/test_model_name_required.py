"""Friction: an OpenAI-compatible model saved with an empty model name, and "Test this model" then
passed. The admin refuses the save naming the field; a model saved earlier without a name fails
its test, without calling anything."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.llm.models import ModelConfig
from tests.factories import make_model, make_tenant, make_user
from tests.fakes.llm import FakeOpenAI

from .conftest import login

pytestmark = pytest.mark.django_db


def _form(tenant, **overrides):
    data = {
        "tenant": tenant.pk,
        "name": "primary",
        "enabled": "on",
        "tier": "general",
        "purpose": "chat",
        "provider": "openai",
        "endpoint": "https://api.example.com/v1",
        "api_key": "sk-test",
        "model": "",
        "api_version": "",
        "max_tokens": "2048",
        "temperature": "0.7",
        "timeout_s": "3",
        "cost_input_per_1k": "0",
        "cost_output_per_1k": "0",
    }
    data.update(overrides)
    return data


def test_an_openai_compatible_model_without_a_model_name_is_not_saved(client, setup_done):
    acme = make_tenant("acme")
    login(client, make_user("alice", tenant=acme))
    resp = client.post(reverse("admin:llm_modelconfig_add"), _form(acme))
    assert resp.status_code == 200  # the form again, with the error
    assert "Name the model to use" in resp.content.decode()
    assert not ModelConfig.objects.exists()
    ok = client.post(reverse("admin:llm_modelconfig_add"), _form(acme, model="glm-4-turbo"))
    assert ok.status_code == 302 and ModelConfig.objects.get().model == "glm-4-turbo"


def test_testing_a_model_without_a_model_name_fails_and_says_why(client, setup_done):
    acme = make_tenant("acme")
    with FakeOpenAI() as fake:
        cfg = make_model(acme, "primary", endpoint=fake.url, model="")
        login(client, make_user("alice", tenant=acme))
        resp = client.get(reverse("admin:llm_modelconfig_test_this_model", args=[cfg.pk]), follow=True)
        assert fake.calls == 0
    said = [(m.level_tag, str(m)) for m in resp.context["messages"]]
    assert len(said) == 1 and said[0][0] == "error" and "model name" in said[0][1], said
