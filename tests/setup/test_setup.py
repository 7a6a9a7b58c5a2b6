"""First-run setup: refuses a wrong token, creates everything, then disappears."""

import pytest
from django.contrib.auth import get_user_model

from apps.bots.models import Bot
from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from apps.setup.services import setup_token
from apps.tenants.models import Membership, Tenant

pytestmark = pytest.mark.django_db


def form(**overrides):
    data = {
        "setup_token": setup_token(),
        "username": "owner",
        "email": "owner@example.com",
        "password1": "a-long-unusual-passphrase-42",
        "password2": "a-long-unusual-passphrase-42",
        "tenant_name": "ACME Corp",
        "tenant_slug": "acme",
        "provider": "builtin",
        "endpoint": "",
        "api_key": "",
        "model_name": "",
        "bot_name": "Helpdesk",
        "channel_key": "acme-web",
    }
    data.update(overrides)
    return data


def test_fresh_install_leads_to_setup(client):
    assert client.get("/").url == "/setup/"
    assert client.get("/admin/").url == "/setup/"
    page = client.get("/setup/")
    assert page.status_code == 200
    assert "Setup token" in page.content.decode()


def test_wrong_token_is_refused_and_creates_nothing(client):
    resp = client.post("/setup/", form(setup_token="0000-0000-0000-0000"))
    assert resp.status_code == 400
    assert "setup token is not right" in resp.content.decode()
    assert not get_user_model().objects.exists()
    assert not Tenant.objects.exists()


def test_setup_creates_admin_tenant_model_bot_channel_then_disappears(client):
    resp = client.post("/setup/", form())
    assert resp.status_code == 302 and resp.url == "/admin/start/getting-started/"
    user = get_user_model().objects.get(username="owner")
    assert user.is_superuser and user.is_staff
    tenant = Tenant.objects.get(slug="acme")
    assert Membership.objects.get(user=user).tenant == tenant
    bot = Bot.objects.get(tenant=tenant)
    assert bot.model.provider == ModelConfig.Provider.BUILTIN
    assert Channel.objects.get(key="acme-web").platform == "web"
    # the admin is now the console, logged in
    assert client.get("/admin/").status_code == 200
    # and setup is gone, for everyone
    client.logout()
    assert client.get("/setup/").status_code == 404
    again = client.post("/setup/", form(username="intruder", tenant_slug="evil", channel_key="evil-web"))
    assert again.status_code == 404
    assert not get_user_model().objects.filter(username="intruder").exists()
    assert client.get("/").url == "/admin/"


def test_api_model_needs_endpoint_and_name(client):
    resp = client.post("/setup/", form(provider="openai"))
    assert resp.status_code == 400
    text = resp.content.decode()
    assert "needs its API base URL" in text and "Name the model" in text


def test_setup_token_command_prints_the_token(capsys):
    from django.core.management import call_command

    call_command("setup_token")
    assert capsys.readouterr().out.strip() == setup_token()
