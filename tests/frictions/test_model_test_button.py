"""Friction: "Test this model" existed only as a bulk action on the list, not on the model's page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_model, make_tenant, make_user
from tests.fakes.llm import FakeOpenAI

from .conftest import login, messages_of

pytestmark = pytest.mark.django_db


def test_the_models_page_has_a_test_button_that_calls_the_model(client, setup_done):
    acme = make_tenant("acme")
    with FakeOpenAI() as fake:
        cfg = make_model(acme, "primary", endpoint=fake.url, model="glm-4-turbo")
        login(client, make_user("alice", tenant=acme))
        page = client.get(reverse("admin:llm_modelconfig_change", args=[cfg.pk])).content.decode()
        button = reverse("admin:llm_modelconfig_test_this_model", args=[cfg.pk])
        assert f'href="{button}"' in page and "Test this model" in page
        resp = client.get(button, follow=True)
        assert fake.calls == 1
    assert resp.redirect_chain[-1][0] == reverse("admin:llm_modelconfig_change", args=[cfg.pk])
    assert any(m.startswith("primary: OK") for m in messages_of(resp)), messages_of(resp)
