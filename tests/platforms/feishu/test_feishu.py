"""Feishu / Lark: handshake, signature + Encrypt Key, message events, replies through the fake
messages API with a cached tenant token."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.cache import cache

from apps.channels.platforms.base import PlatformError, RawRequest, Target
from apps.channels.platforms.feishu import crypto
from apps.channels.platforms.feishu.adapter import FeishuAdapter
from apps.channels.platforms.registry import get_adapter
from apps.conversations.models import InboundMessage
from tests.fakes.platforms import as_meta, sample, sample_json
from tests.platforms.conftest import ANSWER, FEISHU_CREDENTIALS, QUESTION
from tests.platforms.feishu.fake import feishu_event, install_feishu

KEY = FEISHU_CREDENTIALS["encrypt_key"]
URL = "/webhooks/feishu/feishu-main/"
BOT_OPEN_ID = "ou_bot00000000000000000000000000001"


def post(client, payload, *, encrypt_key=KEY, url=URL, **kw):
    body, headers = feishu_event(payload, encrypt_key=encrypt_key, **kw)
    return client.post(url, data=body, **as_meta(headers))


def message(event_id="ev-1", text=QUESTION, *, name="im.message.receive_v1.p2p_text.json"):
    payload = sample_json("feishu", name)
    payload["header"]["event_id"] = event_id
    content = json.loads(payload["event"]["message"]["content"])
    if "text" in content:
        content["text"] = text
        payload["event"]["message"]["content"] = json.dumps(content)
    payload["event"]["message"]["message_id"] = f"om_{event_id}"
    return payload


# --- official vectors and crypto ------------------------------------------------------------------


def test_official_decrypt_vector():
    vectors = sample_json("feishu", "official_vectors.json")["cases"]
    for case in vectors:
        assert (
            crypto.decrypt(case["input"]["encrypt"], case["config"]["encrypt_key"])
            == (case["expect"]["decrypted_plaintext"])
        )


def test_encrypt_round_trip_and_wrong_key():
    blob = crypto.encrypt('{"a": "你好"}', "k1")
    assert crypto.decrypt(blob, "k1") == '{"a": "你好"}'
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt(blob, "k2")
    with pytest.raises(crypto.DecryptError):
        crypto.decrypt("not base64 !!", "k1")


def test_signature_is_sha256_of_concatenation():
    import hashlib

    body = b'{"encrypt":"abc"}'
    expected = hashlib.sha256(b"1700000000" + b"n0nce" + b"key" + body).hexdigest()
    assert crypto.signature("1700000000", "n0nce", "key", body) == expected
    assert crypto.signature_matches(expected.upper(), "1700000000", "n0nce", "key", body)


# --- handshake ------------------------------------------------------------------------------------


def test_url_verification_plain(client, feishu_channel):
    resp = post(client, sample("feishu", "url_verification.json"), encrypt_key="")
    assert resp.status_code == 200
    assert resp.json() == {"challenge": "ajls384kdjx98XX"}


def test_url_verification_encrypted_answers_plaintext(client, feishu_channel):
    resp = post(client, sample("feishu", "url_verification.json"))
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/json")
    assert resp.json() == {"challenge": "ajls384kdjx98XX"}


def test_url_verification_wrong_token_is_refused(client, feishu_channel):
    payload = sample_json("feishu", "url_verification.json")
    payload["token"] = "someone-else"
    assert post(client, payload).status_code == 403


# --- the whole path: webhook → accept → task → process → send -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_message_answered_through_fake_feishu_with_cached_token(client, feishu_channel, fake_server):
    install_feishu(fake_server, bot_open_id=BOT_OPEN_ID)

    resp = post(client, message("ev-1"))
    assert resp.status_code == 200

    sends = fake_server.requests_to("/open-apis/im/v1/messages")
    assert len(sends) == 1
    assert sends[0].path == "/open-apis/im/v1/messages/om_ev-1/reply"
    body = sends[0].json()
    assert body["msg_type"] == "interactive"
    card = json.loads(body["content"])
    assert card["elements"][0] == {"tag": "markdown", "content": "We are open **9:00–18:00**, Monday to Friday."}
    assert body["uuid"].startswith("parley-")

    assert post(client, message("ev-2")).status_code == 200
    assert len(fake_server.requests_to("/open-apis/im/v1/messages")) == 2
    # Fetched once, reused for the second answer.
    assert len(fake_server.requests_to("/open-apis/auth/v3/tenant_access_token/internal")) == 1
    assert all(r.headers["Authorization"].startswith("Bearer t-") for r in fake_server.requests_to("/open-apis/im/"))
    inbound = InboundMessage.objects.get(platform_message_id="ev-1")
    assert inbound.user_id == "ou_84aad35d084aa403a838cf73ee18467"
    assert inbound.reply.text == ANSWER
    assert inbound.reply.delivered_at is not None


@pytest.mark.django_db(transaction=True)
def test_redelivered_event_is_answered_once(client, feishu_channel, fake_server, stored):
    install_feishu(fake_server)
    payload = message("ev-dup")
    assert post(client, payload).status_code == 200
    assert post(client, payload).status_code == 200  # Feishu's retry: same event_id
    assert stored() == 1
    assert len(fake_server.requests_to("/open-apis/im/v1/messages")) == 1


@pytest.mark.django_db(transaction=True)
def test_group_message_with_mention_is_answered_without_the_mention(client, feishu_channel, fake_server):
    install_feishu(fake_server)
    payload = sample_json("feishu", "im.message.receive_v1.group_mention.json")
    payload["event"]["message"]["content"] = json.dumps({"text": f"@_user_1 {QUESTION}"})
    assert post(client, payload).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.text == QUESTION
    assert inbound.is_group
    assert len(fake_server.requests_to("/open-apis/im/v1/messages/om_dc13264520392913993dd051dba21dcf/reply")) == 1


@pytest.mark.django_db(transaction=True)
def test_token_expired_code_refreshes_once(client, feishu_channel, fake_server):
    install_feishu(fake_server, token="t-fresh")
    adapter = get_adapter("feishu")
    cache.set(adapter._token_key(feishu_channel), "t-expired", 3600)
    sent = adapter.send_test_message(feishu_channel, Target(chat_id="oc_1"))
    assert sent.platform_message_id.startswith("om_sent")
    assert sent.raw["code"] == 0
    calls = fake_server.requests_to("/open-apis/im/v1/messages")
    assert [c.headers["Authorization"] for c in calls] == ["Bearer t-expired", "Bearer t-fresh"]
    assert calls[-1].query == {"receive_id_type": ["chat_id"]}
    assert calls[-1].json()["receive_id"] == "oc_1"


def test_bad_credentials_are_a_permanent_error(feishu_channel, fake_server):
    fake_server.route(
        "POST",
        "/open-apis/auth/v3/tenant_access_token/internal",
        lambda req: (200, {"code": 10014, "msg": "app secret invalid"}),
    )
    with pytest.raises(PlatformError) as exc:
        get_adapter("feishu").send_test_message(feishu_channel, Target(chat_id="oc_1"))
    assert exc.value.permanent
    assert "app secret invalid" in str(exc.value)


def test_server_error_is_retryable(feishu_channel, fake_server):
    install_feishu(fake_server)
    fake_server.route("POST", "/open-apis/im/v1/messages", lambda req: (503, {"code": 1, "msg": "busy"}))
    with pytest.raises(PlatformError) as exc:
        get_adapter("feishu").send_test_message(feishu_channel, Target(chat_id="oc_1"))
    assert not exc.value.permanent


# --- events that are not answered ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["im.message.message_read_v1.json", "contact.user.created_v3.json", "im.message.receive_v1.group_no_mention.json"],
)
def test_events_not_for_the_bot_are_acknowledged_and_not_stored(client, feishu_channel, stored, name):
    resp = post(client, sample("feishu", name))
    assert resp.status_code == 200
    assert stored() == 0


def test_image_message_is_acknowledged_and_not_stored(client, feishu_channel, stored):
    payload = message("ev-img")
    payload["event"]["message"]["message_type"] = "image"
    payload["event"]["message"]["content"] = json.dumps({"image_key": "img_v2_041b"})
    assert post(client, payload).status_code == 200
    assert stored() == 0


# --- parsing --------------------------------------------------------------------------------------


def _parse(channel, payload):
    body, headers = feishu_event(payload, encrypt_key=KEY)
    request = RawRequest(method="POST", path=URL, headers=headers, body=body)
    adapter = FeishuAdapter()
    adapter.verify(request, channel)
    return adapter.parse(request, channel)


def test_group_mention_of_another_user_is_kept_once_the_bot_is_known(feishu_channel):
    adapter = FeishuAdapter()
    cache.set(adapter._bot_key(feishu_channel), BOT_OPEN_ID)
    [inbound] = _parse(feishu_channel, sample_json("feishu", "im.message.receive_v1.group_mention.json"))
    assert inbound.text == "What are your opening hours? cc @Li Lei"
    assert inbound.chat_id == "oc_a0553eda9014c201e6969b478895c230"
    assert inbound.message_id == "0f6c4b0e8a3e4a6d9c1b2a3f4e5d6c7b"
    assert inbound.reply_context["message_id"] == "om_dc13264520392913993dd051dba21dcf"


def test_group_message_mentioning_only_others_is_ignored_once_the_bot_is_known(feishu_channel):
    adapter = FeishuAdapter()
    cache.set(adapter._bot_key(feishu_channel), "ou_someone_else_entirely")
    assert _parse(feishu_channel, sample_json("feishu", "im.message.receive_v1.group_mention.json")) == []


def test_post_message_text(feishu_channel):
    [inbound] = _parse(feishu_channel, sample_json("feishu", "im.message.receive_v1.group_post.json"))
    assert inbound.text == QUESTION
    assert "token" not in inbound.raw["header"]


def test_bot_open_id_is_learned_on_send(feishu_channel, fake_server):
    install_feishu(fake_server, bot_open_id=BOT_OPEN_ID)
    adapter = get_adapter("feishu")
    adapter.send_test_message(feishu_channel, Target(chat_id="oc_1"))
    assert cache.get(adapter._bot_key(feishu_channel)) == BOT_OPEN_ID


# --- rejections: 4xx, nothing stored --------------------------------------------------------------


def test_bad_signature(client, feishu_channel, stored):
    body, headers = feishu_event(message(), encrypt_key=KEY)
    headers["X-Lark-Signature"] = "0" * 64
    assert client.post(URL, data=body, **as_meta(headers)).status_code == 401
    assert stored() == 0


def test_missing_signature_headers(client, feishu_channel, stored):
    body, _ = feishu_event(message(), encrypt_key=KEY)
    assert client.post(URL, data=body, content_type="application/json").status_code == 401
    assert stored() == 0


def test_body_tampered_after_signing(client, feishu_channel, stored):
    _, headers = feishu_event(message(), encrypt_key=KEY)
    other, _ = feishu_event(message("ev-forged"), encrypt_key=KEY)
    assert client.post(URL, data=other, **as_meta(headers)).status_code == 401
    assert stored() == 0


def test_wrong_encrypt_key(client, feishu_channel, stored):
    assert post(client, message(), encrypt_key="another-key").status_code == 401
    assert stored() == 0


def test_wrong_verification_token(client, feishu_channel, stored):
    payload = message()
    payload["header"]["token"] = "not-the-token"
    assert post(client, payload).status_code == 403
    assert stored() == 0


def test_event_for_another_app(client, feishu_channel, stored):
    payload = message()
    payload["header"]["app_id"] = "cli_other"
    assert post(client, payload).status_code == 403
    assert stored() == 0


def test_plaintext_event_without_encrypt_key_checks_token(client, feishu_channel, stored):
    feishu_channel.credentials = {k: v for k, v in FEISHU_CREDENTIALS.items() if k != "encrypt_key"}
    feishu_channel.save()
    bad = copy.deepcopy(message())
    bad["header"]["token"] = "nope"
    assert post(client, bad, encrypt_key="").status_code == 403
    assert post(client, message("ev-plain"), encrypt_key="").status_code == 200
    assert stored() == 1


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"encrypt": 5}', b'{"schema": "2.0", "header": 3}'])
def test_malformed_bodies(client, feishu_channel, stored, body):
    headers = {"X-Lark-Request-Timestamp": "1", "X-Lark-Request-Nonce": "n"}
    headers["X-Lark-Signature"] = crypto.signature("1", "n", KEY, body)
    resp = client.post(URL, data=body, **as_meta({"Content-Type": "application/json", **headers}))
    assert resp.status_code in (400, 403)
    assert stored() == 0


def test_oversized_body(client, feishu_channel, settings, stored):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert post(client, message(text="x" * 5000)).status_code == 413
    assert stored() == 0


def test_unknown_and_disabled_channels(client, feishu_channel, stored):
    assert post(client, message(), url="/webhooks/feishu/no-such-channel/").status_code == 404
    feishu_channel.enabled = False
    feishu_channel.save()
    assert post(client, message()).status_code == 404
    assert stored() == 0


def test_get_is_refused(client, feishu_channel):
    assert client.get(URL).status_code == 405


# --- rendering ------------------------------------------------------------------------------------


def test_render_card_markdown_escapes_tags_and_degrades_headings():
    [card] = FeishuAdapter().render(
        '# Hours\n\nOpen <at user_id="all">x</at> **daily**.\n\n| a | b |\n|---|---|\n| 1 | 2 |'
    )
    content = card["elements"][0]["content"]
    assert content.startswith("**Hours**")
    assert "&lt;at" in content and "<at" not in content
    assert "a | b\n1 | 2" in content


def test_long_answers_are_split_into_several_cards():
    cards = FeishuAdapter().render(("word " * 3000 + "\n\n") * 4)
    assert len(cards) > 1
    assert all(len(json.dumps(c, ensure_ascii=False).encode()) < 30_000 for c in cards)
