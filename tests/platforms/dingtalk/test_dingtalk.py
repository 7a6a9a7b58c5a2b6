"""DingTalk: the timestamp + HMAC signature, stale and replayed requests, text messages in single and
group chats, replies through the session webhook or the robot API with a cached access token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.core.cache import cache

from apps.channels.platforms.base import PlatformError, Target
from apps.channels.platforms.dingtalk.adapter import DingTalkAdapter, sign
from apps.channels.platforms.registry import get_adapter
from apps.conversations.models import InboundMessage
from tests.fakes.platforms import as_meta, sample_json
from tests.fakes.server import FakeServer
from tests.platforms.conftest import ANSWER, DINGTALK_CREDENTIALS, QUESTION
from tests.platforms.dingtalk.fake import dingtalk_headers, install_dingtalk

URL = "/webhooks/dingtalk/dingtalk-main/"
SECRET = DINGTALK_CREDENTIALS["client_secret"]


def body_for(name, msg_id, *, webhook="", expires_in_ms=3_600_000, text=None):
    payload = sample_json("dingtalk", name)
    payload["msgId"] = msg_id
    if webhook is not None:
        payload["sessionWebhook"] = webhook or payload["sessionWebhook"]
    payload["sessionWebhookExpiredTime"] = int(time.time() * 1000) + expires_in_ms
    if text is not None:
        payload["text"]["content"] = text
    return json.dumps(payload, ensure_ascii=False).encode()


def post(client, body, *, headers=None, url=URL):
    return client.post(url, data=body, **as_meta(headers or dingtalk_headers(SECRET)))


def test_sign_is_base64_hmac_sha256_of_timestamp_newline_secret():
    # Worked example built from the published algorithm (DingTalk publishes no vector).
    mac = hmac.new(b"this-is-secret", b"1577262236757\nthis-is-secret", hashlib.sha256).digest()
    assert sign("1577262236757", "this-is-secret") == base64.b64encode(mac).decode()


# --- the whole path ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_single_chat_answered_through_session_webhook(client, dingtalk_channel, fake_server):
    install_dingtalk(fake_server)
    webhook = f"{fake_server.url}/robot/sendBySession?session=abc123"
    resp = post(client, body_for("text_single.json", "msg-1", webhook=webhook))
    assert resp.status_code == 200

    [sent] = fake_server.requests_to("/robot/sendBySession")
    assert sent.query == {"session": ["abc123"]}
    assert sent.json() == {
        "msgtype": "markdown",
        "markdown": {"title": "We are open 9:00–18:00…", "text": ANSWER},
    }
    assert fake_server.requests_to("/v1.0/") == []  # no token needed
    inbound = InboundMessage.objects.get()
    assert (inbound.user_id, inbound.user_name, inbound.is_group) == ("manager7140", "张三", False)
    assert inbound.reply.delivered_at is not None


@pytest.mark.django_db(transaction=True)
def test_group_with_foreign_session_webhook_uses_robot_api_and_caches_token(client, dingtalk_channel, fake_server):
    install_dingtalk(fake_server)
    with FakeServer() as elsewhere:
        install_dingtalk(elsewhere)
        foreign = f"{elsewhere.url}/robot/sendBySession?session=evil"
        assert post(client, body_for("text_group.json", "msg-g1", webhook=foreign)).status_code == 200
        assert post(client, body_for("text_group.json", "msg-g2", webhook=foreign)).status_code == 200
        assert elsewhere.requests == []  # never followed

    sends = fake_server.requests_to("/v1.0/robot/groupMessages/send")
    assert len(sends) == 2
    body = sends[0].json()
    assert body["openConversationId"] == "cidgR4nPq8mXz1L0yT6sWkVbHw=="
    assert body["robotCode"] == DINGTALK_CREDENTIALS["robot_code"]
    assert body["msgKey"] == "sampleMarkdown"
    assert json.loads(body["msgParam"])["text"] == ANSWER
    assert sends[0].headers["x-acs-dingtalk-access-token"] == "dingtalk-access-token-0001"
    [token_call] = fake_server.requests_to("/v1.0/oauth2/accessToken")  # fetched once, reused
    assert token_call.json() == {"appKey": DINGTALK_CREDENTIALS["client_id"], "appSecret": SECRET}
    inbound = InboundMessage.objects.get(platform_message_id="msg-g1")
    assert inbound.text == QUESTION  # the leading space of the @-mention is gone
    assert inbound.is_group


@pytest.mark.django_db(transaction=True)
def test_expired_session_webhook_falls_back_to_one_to_one_robot_api(client, dingtalk_channel, fake_server):
    install_dingtalk(fake_server)
    webhook = f"{fake_server.url}/robot/sendBySession?session=old"
    assert post(client, body_for("text_single.json", "msg-x", webhook=webhook, expires_in_ms=-1000)).status_code == 200
    assert fake_server.requests_to("/robot/sendBySession") == []
    [sent] = fake_server.requests_to("/v1.0/robot/oToMessages/batchSend")
    assert sent.json()["userIds"] == ["manager7140"]


@pytest.mark.django_db(transaction=True)
def test_redelivery_is_answered_once(client, dingtalk_channel, fake_server, stored):
    install_dingtalk(fake_server)
    body = body_for("text_single.json", "msg-dup", webhook=f"{fake_server.url}/robot/sendBySession?s=1")
    headers = dingtalk_headers(SECRET)
    assert post(client, body, headers=headers).status_code == 200
    assert post(client, body, headers=headers).status_code == 200
    assert stored() == 1
    assert len(fake_server.requests_to("/robot/sendBySession")) == 1


def test_token_rejected_is_refreshed_once(dingtalk_channel, fake_server):
    install_dingtalk(fake_server)
    adapter = get_adapter("dingtalk")
    cache.set(adapter._token_key(dingtalk_channel), "stale", 3600)
    sent = adapter.send_test_message(dingtalk_channel, Target(chat_id="cid1", user_id="manager7140"))
    assert sent.platform_message_id == "pqk-1"
    tokens = [r.headers["x-acs-dingtalk-access-token"] for r in fake_server.requests_to("/v1.0/robot/")]
    assert tokens == ["stale", "dingtalk-access-token-0001"]


def test_bad_credentials_are_a_permanent_error(dingtalk_channel, fake_server):
    fake_server.route(
        "POST",
        "/v1.0/oauth2/accessToken",
        lambda req: (400, {"code": "invalidClientSecret", "message": "无效的clientSecret"}),
    )
    with pytest.raises(PlatformError) as exc:
        get_adapter("dingtalk").send_test_message(dingtalk_channel, Target(chat_id="c", user_id="u"))
    assert exc.value.permanent


# --- not answered -----------------------------------------------------------------------------------


def test_picture_is_acknowledged_and_not_stored(client, dingtalk_channel, stored):
    assert post(client, body_for("picture_single.json", "msg-pic")).status_code == 200
    assert stored() == 0


def test_group_message_not_at_the_bot_is_ignored(client, dingtalk_channel, stored):
    payload = json.loads(body_for("text_group.json", "msg-noat"))
    payload["isInAtList"] = False
    assert post(client, json.dumps(payload).encode()).status_code == 200
    assert stored() == 0


# --- rejections ---------------------------------------------------------------------------------------


def test_bad_and_missing_signature(client, dingtalk_channel, stored):
    body = body_for("text_single.json", "msg-r1")
    assert post(client, body, headers=dingtalk_headers("not-the-secret")).status_code == 401
    assert post(client, body, headers={"Content-Type": "application/json"}).status_code == 401
    headers = dingtalk_headers(SECRET)
    headers["timestamp"] = "abc"
    assert post(client, body, headers=headers).status_code == 401
    assert stored() == 0


@pytest.mark.parametrize("skew_ms", [-3_601_000, 3_601_000])
def test_stale_timestamp(client, dingtalk_channel, stored, skew_ms):
    headers = dingtalk_headers(SECRET, timestamp_ms=int(time.time() * 1000) + skew_ms)
    assert post(client, body_for("text_single.json", "msg-old"), headers=headers).status_code == 401
    assert stored() == 0


def test_signature_replayed_with_another_body(client, dingtalk_channel, stored):
    headers = dingtalk_headers(SECRET)
    assert post(client, body_for("picture_single.json", "msg-a"), headers=headers).status_code == 200
    forged = body_for("text_single.json", "msg-forged")
    assert post(client, forged, headers=headers).status_code == 401
    assert stored() == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"msgtype": "text"}', b'{"msgId": 7}'])
def test_malformed_bodies(client, dingtalk_channel, stored, body):
    assert post(client, body).status_code == 400
    assert stored() == 0


def test_oversized_unknown_disabled_and_get(client, dingtalk_channel, settings, stored):
    assert post(client, body_for("text_single.json", "m1"), url="/webhooks/dingtalk/nope-nope/").status_code == 404
    assert client.get(URL).status_code == 405
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 500
    assert post(client, body_for("text_single.json", "m2", text="x" * 3000)).status_code == 413
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    dingtalk_channel.enabled = False
    dingtalk_channel.save()
    assert post(client, body_for("text_single.json", "m3")).status_code == 404
    assert stored() == 0


# --- rules for following URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://oapi.dingtalk.com/robot/sendBySession?session=x", True),
        ("https://api.dingtalk.com/robot/sendBySession?session=x", True),
        ("http://oapi.dingtalk.com/robot/sendBySession", False),
        ("https://oapi.dingtalk.com.evil.example/robot", False),
        ("https://oapi.dingtalk.com:8443/robot", False),
        ("https://evil.example/robot", False),
        ("https://proxy.example.cn/robot/sendBySession", True),  # the channel's api_base host
        ("http://proxy.example.cn/robot/sendBySession", False),
        ("not a url", False),
    ],
)
def test_session_webhook_hosts(dingtalk_channel, url, allowed):
    dingtalk_channel.api_base = "https://proxy.example.cn"
    assert DingTalkAdapter().session_webhook_allowed(dingtalk_channel, url) is allowed


def test_render_markdown_subset_and_size():
    adapter = DingTalkAdapter()
    [msg] = adapter.render("## Hours\n\n~~old~~ `x` *new*\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert msg == {"title": "Hours", "text": "## Hours\n\nold x *new*\n\na | b\n1 | 2"}
    parts = adapter.render("词" * 20000)
    assert len(parts) > 1 and all(len(p["text"].encode()) <= 18_000 for p in parts)
