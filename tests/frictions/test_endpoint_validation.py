"""Friction: endpoint validation was inconsistent — ``api.openai.com/v1`` accepted in setup but
silently rewritten in the admin, ``localhost:8101/v1`` refused with no hint to add ``http://``,
``ftp://x`` given two contradicting errors. Setup and the admin now say the same, one clear error."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.llm.models import ModelConfig
from apps.setup.services import setup_token
from tests.factories import make_tenant, make_user

from .conftest import login

pytestmark = pytest.mark.django_db


def _setup_form(endpoint: str) -> dict:
    return {
        "setup_token": setup_token(),
        "username": "owner",
        "password1": "a-long-unusual-passphrase-42",
        "password2": "a-long-unusual-passphrase-42",
        "tenant_name": "ACME",
        "tenant_slug": "acme",
        "provider": "openai",
        "endpoint": endpoint,
        "model_name": "glm-4-turbo",
        "bot_name": "Helpdesk",
        "channel_key": "acme-web",
    }


def _admin_form(tenant, endpoint: str) -> dict:
    return {
        "tenant": tenant.pk,
        "name": "primary",
        "enabled": "on",
        "tier": "general",
        "purpose": "chat",
        "provider": "openai",
        "endpoint": endpoint,
        "api_key": "",
        "model": "glm-4-turbo",
        "api_version": "",
        "max_tokens": "2048",
        "temperature": "0.7",
        "timeout_s": "3",
        "cost_input_per_1k": "0",
        "cost_output_per_1k": "0",
    }


def _endpoint_errors(html: str) -> list[str]:
    """The error texts shown at the endpoint field (setup's and the admin's markup)."""
    block = re.search(r'id="id_endpoint_error"[^>]*>(.*?)</ul>', html, re.S)
    if not block:
        return []
    return [re.sub(r"<[^>]+>", "", e).strip() for e in re.findall(r"<li>(.*?)</li>", block.group(1), re.S)]


CASES = {
    "api.openai.com/v1": "https://api.openai.com/v1",
    "localhost:8101/v1": "http://localhost:8101/v1",
    "ftp://x": "",
}


@pytest.mark.parametrize("endpoint", list(CASES))
def test_setup_and_admin_give_the_same_single_error_with_a_hint(client, endpoint):
    setup = client.post("/setup/", _setup_form(endpoint))
    assert setup.status_code == 400
    setup_errors = _endpoint_errors(setup.content.decode())

    make_user("root", superuser=True)
    acme = make_tenant("acme")
    login(client, make_user("alice", tenant=acme))
    admin = client.post(reverse("admin:llm_modelconfig_add"), _admin_form(acme, endpoint))
    admin_errors = _endpoint_errors(admin.content.decode())

    assert len(setup_errors) == 1, setup_errors
    assert setup_errors == admin_errors
    assert not ModelConfig.objects.exists()
    if CASES[endpoint]:  # a URL without its scheme: the error names the URL to write instead
        assert CASES[endpoint] in setup_errors[0]
    else:
        assert "http://" in setup_errors[0] and "https://" in setup_errors[0]


def test_a_full_url_is_kept_as_written(client, setup_done):
    acme = make_tenant("acme")
    login(client, make_user("alice", tenant=acme))
    resp = client.post(reverse("admin:llm_modelconfig_add"), _admin_form(acme, "http://localhost:8101/v1"))
    assert resp.status_code == 302
    assert ModelConfig.objects.get().endpoint == "http://localhost:8101/v1"
