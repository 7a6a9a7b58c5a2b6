"""The visitor token endpoint: POST /api/v1/webchat/<key>/token."""

from __future__ import annotations

import json
import time

import pytest

from apps.channels.platforms.web import services
from apps.channels.platforms.web import visitor as visitors
from tests.factories import make_bot, make_channel, make_tenant

ORIGIN = "https://shop.example.com"
URL = "/api/v1/webchat/acme-web/token"


@pytest.fixture
def channel(db):
    bot = make_bot(make_tenant("acme"), name="Helpdesk", greeting="Hi there")
    return make_channel(bot, platform="web", key="acme-web", allowed_origins=f"{ORIGIN}\nhttps://other.example.com")


def post(client, body=None, origin=ORIGIN, raw=None, url=URL):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    data = raw if raw is not None else json.dumps(body or {})
    return client.post(url, data=data, content_type="application/json", **headers)


def test_issues_a_token_with_cors_for_an_allowed_origin(client, channel):
    resp = post(client)
    assert resp.status_code == 200
    assert resp["Access-Control-Allow-Origin"] == ORIGIN and resp["Cache-Control"] == "no-store"
    data = resp.json()
    visitor = visitors.visitor_token_verify(channel_key="acme-web", token=data["token"])
    assert (visitor.visitor_id, visitor.chat_id) == (data["visitor_id"], data["conversation_id"])
    assert data["ws_path"] == "/ws/chat/acme-web/" and data["protocol"] == "parley.v1"
    assert data["bot"] == {"name": "Helpdesk", "greeting": "Hi there"}
    assert data["continued"] is False
    assert data["expires_at"] > time.time() + 3600


def test_a_previous_token_keeps_visitor_and_conversation_unless_a_new_one_is_asked(client, channel):
    first = post(client).json()
    again = post(client, {"token": first["token"]}).json()
    assert again["continued"] is True
    assert (again["visitor_id"], again["conversation_id"]) == (first["visitor_id"], first["conversation_id"])
    fresh = post(client, {"token": first["token"], "new_conversation": True}).json()
    assert fresh["visitor_id"] == first["visitor_id"] and fresh["conversation_id"] != first["conversation_id"]


def test_an_expired_token_is_renewed_within_the_refresh_window_only(client, channel, settings):
    settings.WEBCHAT_TOKEN_SECONDS = -10  # born expired
    expired = post(client).json()
    with pytest.raises(visitors.InvalidVisitorToken):
        visitors.visitor_token_verify(channel_key="acme-web", token=expired["token"])
    settings.WEBCHAT_TOKEN_SECONDS = 3600
    renewed = post(client, {"token": expired["token"]}).json()
    assert renewed["continued"] is True and renewed["visitor_id"] == expired["visitor_id"]

    settings.WEBCHAT_REFRESH_SECONDS = 5
    settings.WEBCHAT_TOKEN_SECONDS = -60
    too_old = post(client).json()
    settings.WEBCHAT_TOKEN_SECONDS = 3600
    stranger = post(client, {"token": too_old["token"]}).json()
    assert stranger["continued"] is False and stranger["visitor_id"] != too_old["visitor_id"]


def test_forged_or_foreign_tokens_never_carry_an_identity_over(client, channel):
    make_channel(channel.bot, platform="web", key="beta-web", allowed_origins=ORIGIN)
    theirs = post(client, url="/api/v1/webchat/beta-web/token").json()
    mine = post(client, {"token": theirs["token"]}).json()
    assert mine["continued"] is False and mine["visitor_id"] != theirs["visitor_id"]

    head, payload, sig = mine["token"].split(".")
    tampered = post(client, {"token": f"{head}.{payload}x.{sig}"}).json()
    assert tampered["continued"] is False
    assert post(client, {"token": "not-a-jwt"}).json()["continued"] is False


def test_api_access_tokens_and_visitor_tokens_are_not_interchangeable(channel):
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    user = get_user_model().objects.create_user("staff", "s@example.com", "x" * 12)
    with pytest.raises(visitors.InvalidVisitorToken):
        visitors.visitor_token_verify(channel_key="acme-web", token=str(AccessToken.for_user(user)))


def test_refusals(client, channel):
    assert post(client, origin="https://evil.example.net").status_code == 403
    assert post(client, url="/api/v1/webchat/nope/token").status_code == 404
    channel.enabled = False
    channel.save()
    assert post(client).status_code == 404
    channel.enabled = True
    channel.save()
    assert post(client, raw="{not json").status_code == 400
    assert post(client, raw="[1]").status_code == 400
    assert post(client, raw=json.dumps({"token": "x" * 9000})).status_code == 413
    assert client.get(URL, HTTP_ORIGIN=ORIGIN).status_code == 405


def test_preflight_and_requests_without_origin(client, channel):
    resp = client.options(URL, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert resp.status_code == 204
    assert resp["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in resp["Access-Control-Allow-Methods"] and "Content-Type" in resp["Access-Control-Allow-Headers"]
    assert client.options(URL, HTTP_ORIGIN="https://evil.example.net").status_code == 403
    resp = post(client, origin=None)  # a server or curl: no browser to protect
    assert resp.status_code == 200 and "Access-Control-Allow-Origin" not in resp


@pytest.mark.parametrize(
    ("allowed", "origin", "host", "ok"),
    [
        ("", "http://testserver", "testserver", True),
        ("", "http://127.0.0.1:8000", "internal:9000", True),  # PUBLIC_BASE_URL's origin
        ("", "https://shop.example.com", "testserver", False),
        ("https://Shop.Example.com/", "https://shop.example.com", "testserver", True),
        ("https://shop.example.com", "http://shop.example.com", "testserver", False),
        ("*", "https://anything.example", "testserver", True),
        ("*", "", "testserver", True),
        ("https://shop.example.com", "", "testserver", False),
        ("", "null", "testserver", False),
    ],
)
def test_origin_rules(channel, allowed, origin, host, ok, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    channel.allowed_origins = allowed
    assert services.origin_allowed(channel, origin=origin, host=host) is ok


def test_token_requests_are_rate_limited_per_address(client, channel, settings):
    settings.WEBCHAT_TOKENS_PER_MINUTE = 3
    assert [post(client).status_code for _ in range(3)] == [200, 200, 200]
    refused = post(client)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused["Access-Control-Allow-Origin"] == ORIGIN  # so the widget can read the refusal
    other = client.post(URL, data="{}", content_type="application/json", HTTP_ORIGIN=ORIGIN, REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 200
