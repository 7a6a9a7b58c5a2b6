"""Tenant isolation in the admin: an admin of tenant A cannot list, open, change or delete tenant
B's rows — by URL guessing too; a reviewer reads conversations and changes nothing."""

import pytest
from django.urls import reverse

from apps.bots.models import Bot
from apps.channels.models import Channel
from apps.conversations.models import Conversation
from apps.llm.models import ModelConfig
from tests.factories import PASSWORD, make_bot, make_channel, make_model, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    a, b = make_tenant("tenant-a"), make_tenant("tenant-b")
    data = {}
    for t in (a, b):
        model = make_model(t, api_key=f"sk-{t.slug}-secret-value-0000")
        bot = make_bot(t, slug=f"bot-{t.slug}", model=model)
        channel = make_channel(bot, platform="web", key=f"web-{t.slug}")
        conv = Conversation.objects.create(tenant=t, bot=bot, channel=channel, chat_id="c1", user_id="u1")
        data[t.slug] = {"tenant": t, "model": model, "bot": bot, "channel": channel, "conv": conv}
    make_user("root", superuser=True)  # setup is done: the admin is open
    make_user("admin-a", tenant=a, role="admin")
    make_user("reviewer-a", tenant=a, role="reviewer")
    return data


def login(client, username):
    assert client.login(username=username, password=PASSWORD)
    return client


def _url(obj, action="change"):
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{action}", args=[obj.pk])


def _changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.mark.parametrize(
    "kind,model", [("bot", Bot), ("channel", Channel), ("model", ModelConfig), ("conv", Conversation)]
)
def test_admin_lists_only_own_tenant(client, world, kind, model):
    login(client, "admin-a")
    resp = client.get(_changelist(model))
    assert resp.status_code == 200
    shown = {obj.pk for obj in resp.context["cl"].result_list}
    assert world["tenant-a"][kind].pk in shown
    assert world["tenant-b"][kind].pk not in shown


@pytest.mark.parametrize("kind", ["bot", "channel", "model", "conv"])
def test_admin_cannot_open_other_tenants_rows_by_url(client, world, kind):
    login(client, "admin-a")
    other = world["tenant-b"][kind]
    resp = client.get(_url(other))
    # Django admin answers "doesn't exist" (redirect to the index) for rows outside the queryset.
    assert resp.status_code == 302
    assert resp.url == reverse("admin:index")
    own = world["tenant-a"][kind]
    assert client.get(_url(own)).status_code == 200


@pytest.mark.parametrize("kind", ["bot", "channel", "model"])
def test_admin_cannot_delete_other_tenants_rows(client, world, kind):
    login(client, "admin-a")
    other = world["tenant-b"][kind]
    resp = client.post(_url(other, "delete"), {"post": "yes"})
    assert resp.status_code == 302
    assert type(other).objects.filter(pk=other.pk).exists()


def test_admin_cannot_change_other_tenants_bot_by_post(client, world):
    login(client, "admin-a")
    other = world["tenant-b"]["bot"]
    client.post(_url(other), {"tenant": other.tenant_id, "slug": other.slug, "name": "hijacked"})
    other.refresh_from_db()
    assert other.name != "hijacked"


def test_admin_cannot_create_a_bot_in_another_tenant(client, world):
    login(client, "admin-a")
    b = world["tenant-b"]["tenant"]
    resp = client.post(
        reverse("admin:bots_bot_add"),
        {
            "tenant": b.pk,
            "slug": "sneaky",
            "name": "Sneaky",
            "context_max_tokens": 3000,
            "context_max_turns": 20,
            "idle_timeout_minutes": 30,
            "merge_window_ms": 0,
            "rate_limit_per_second": 100,
            "user_rate_limit_per_minute": 20,
            "cache_ttl_seconds": 60,
            "pii_policy": "mask",
            "retention_days": 30,
            "language_routes": "{}",
            "fallbacks-TOTAL_FORMS": 0,
            "fallbacks-INITIAL_FORMS": 0,
        },
    )
    assert resp.status_code == 200  # the form comes back with an error
    assert "tenant" in resp.context["adminform"].form.errors
    assert not Bot.objects.filter(slug="sneaky").exists()


def test_reviewer_reads_conversations_and_changes_nothing(client, world):
    login(client, "reviewer-a")
    conv = world["tenant-a"]["conv"]
    assert client.get(_changelist(Conversation)).status_code == 200
    resp = client.get(_url(conv))
    assert resp.status_code == 200
    assert resp.context["has_change_permission"] is False
    assert client.post(_url(conv), {"flagged": "on"}).status_code == 403
    assert client.post(_url(conv, "delete"), {"post": "yes"}).status_code == 403
    # Bots, channels and model configs (with their secrets) are not for reviewers.
    assert client.get(_changelist(Bot)).status_code == 403
    assert client.get(_changelist(Channel)).status_code == 403
    assert client.get(_changelist(ModelConfig)).status_code == 403


def test_secrets_are_masked_on_admin_pages(client, world):
    login(client, "admin-a")
    model = world["tenant-a"]["model"]
    page = client.get(_url(model)).content.decode()
    assert "sk-tenant-a-secret-value-0000" not in page
    assert "…0000" in page  # the admin can tell which key is saved
    listing = client.get(_changelist(ModelConfig)).content.decode()
    assert "secret-value" not in listing


def test_saving_model_form_with_blank_secret_keeps_it(client, world):
    login(client, "admin-a")
    model = world["tenant-a"]["model"]
    resp = client.post(
        _url(model),
        {
            "tenant": model.tenant_id,
            "name": "primary",
            "enabled": "on",
            "tier": "general",
            "provider": "openai",
            "endpoint": "http://127.0.0.1:9/v1",
            "api_key": "",
            "model": "m2",
            "max_tokens": 100,
            "temperature": "0.5",
            "timeout_s": "3",
            "cost_input_per_1k": "0",
            "cost_output_per_1k": "0",
        },
    )
    assert resp.status_code == 302, resp.context and resp.context["adminform"].form.errors
    model.refresh_from_db()
    assert model.model == "m2"
    assert model.api_key == "sk-tenant-a-secret-value-0000"


def test_channel_credentials_are_masked_and_kept(client, world):
    login(client, "admin-a")
    channel = world["tenant-a"]["channel"]
    channel.credentials = {"bot_token": "123456:super-secret-telegram-token"}
    channel.save()
    page = client.get(_url(channel)).content.decode()
    assert "super-secret-telegram-token" not in page
