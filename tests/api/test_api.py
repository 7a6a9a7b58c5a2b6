"""The REST API: JWT sign-in, tenant scoping, reviewers read-only, PII masked, delete needs confirmation."""

import pytest

from apps.bots.models import Bot
from apps.conversations.models import Conversation, Message
from tests.factories import PASSWORD, make_bot, make_channel, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    a, b = make_tenant("tenant-a"), make_tenant("tenant-b")
    bots = {t.slug: make_bot(t, slug=f"bot-{t.slug}") for t in (a, b)}
    channel = make_channel(bots["tenant-a"], platform="web", key="web-a")
    conv = Conversation.objects.create(tenant=a, bot=bots["tenant-a"], channel=channel, chat_id="c", user_id="u")
    Message.objects.create(conversation=conv, role="user", text="call me on 13812345678")
    make_user("admin-a", tenant=a, role="admin")
    make_user("reviewer-a", tenant=a, role="reviewer")
    return {"a": a, "b": b, "bots": bots, "conv": conv}


def jwt(client, username):
    resp = client.post("/api/v1/auth/token/", {"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.content
    return {"HTTP_AUTHORIZATION": f"Bearer {resp.json()['access']}"}


def test_api_requires_a_valid_token(client, world):
    assert client.get("/api/v1/bots/").status_code == 401
    assert client.get("/api/v1/bots/", HTTP_AUTHORIZATION="Bearer not-a-jwt").status_code == 401
    assert client.post("/api/v1/auth/token/", {"username": "admin-a", "password": "wrong"}).status_code == 401


def test_admin_sees_only_own_tenants_bots(client, world):
    auth = jwt(client, "admin-a")
    slugs = [b["slug"] for b in client.get("/api/v1/bots/", **auth).json()["results"]]
    assert slugs == ["bot-tenant-a"]
    other = world["bots"]["tenant-b"]
    assert client.get(f"/api/v1/bots/{other.pk}/", **auth).status_code == 404
    assert (
        client.patch(f"/api/v1/bots/{other.pk}/", {"name": "x"}, content_type="application/json", **auth).status_code
        == 404
    )


def test_admin_cannot_create_in_other_tenant(client, world):
    auth = jwt(client, "admin-a")
    resp = client.post(
        "/api/v1/bots/",
        {"tenant": world["b"].pk, "slug": "sneaky", "name": "S"},
        content_type="application/json",
        **auth,
    )
    assert resp.status_code == 400 and "tenant" in resp.json()
    assert not Bot.objects.filter(slug="sneaky").exists()


def test_delete_needs_confirmation(client, world):
    auth = jwt(client, "admin-a")
    bot = world["bots"]["tenant-a"]
    resp = client.delete(f"/api/v1/bots/{bot.pk}/", **auth)
    assert resp.status_code == 400 and "confirm" in resp.json()
    assert Bot.objects.filter(pk=bot.pk).exists()
    assert client.delete(f"/api/v1/bots/{bot.pk}/?confirm={bot.slug}", **auth).status_code == 204
    assert not Bot.objects.filter(pk=bot.pk).exists()


def test_reviewer_reads_conversations_masked_and_writes_nothing(client, world):
    auth = jwt(client, "reviewer-a")
    conv = world["conv"]
    detail = client.get(f"/api/v1/conversations/{conv.pk}/", **auth).json()
    text = detail["messages"][0]["text"]
    assert text.startswith("call me on ") and "12345678" not in text
    assert client.get("/api/v1/bots/", **auth).json()["results"] == []
    bot = world["bots"]["tenant-a"]
    assert (
        client.patch(f"/api/v1/bots/{bot.pk}/", {"name": "x"}, content_type="application/json", **auth).status_code
        == 404
    )
    assert client.delete(f"/api/v1/conversations/{conv.pk}/", **auth).status_code == 405


def test_schema_is_served(client, world):
    resp = client.get("/api/schema/", **jwt(client, "admin-a"))
    assert resp.status_code == 200
    assert b"/api/v1/bots/" in resp.content
