"""WeCom: the official WXBizMsgCrypt vectors through the webhook view, the echostr handshake,
rejections, and answers through the fake message/send API with a cached access token."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from django.core.cache import cache

from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.wecom import crypto
from apps.channels.platforms.wecom.adapter import WeComAdapter
from apps.conversations.models import InboundMessage
from tests.factories import make_channel
from tests.fakes.platforms import sample, sample_json
from tests.platforms.conftest import ANSWER, QUESTION, WECOM_CREDENTIALS
from tests.platforms.wecom.fake import install_wecom, wecom_callback, xml_encrypt_value

URL = "/webhooks/wecom/wecom-main/"
VECTORS = {case["id"]: case for case in sample_json("wecom", "official_vectors.json")["cases"]}


def vector_channel(bot, case, key="wecom-vector"):
    cfg = case["config"]
    return make_channel(
        bot,
        platform="wecom",
        key=key,
        credentials={
            "corp_id": cfg["receive_id"],
            "agent_id": "218",
            "secret": "s",
            "token": cfg["token"],
            "encoding_aes_key": cfg["encoding_aes_key"],
        },
    )


def callback(client, plaintext, *, url=URL, creds=WECOM_CREDENTIALS, **kw):
    query, body = wecom_callback(
        plaintext,
        token=creds["token"],
        encoding_aes_key=creds["encoding_aes_key"],
        corp_id=creds["corp_id"],
        **{k: v for k, v in kw.items() if k in ("json_mode", "timestamp", "nonce")},
    )
    content_type = "application/json" if kw.get("json_mode") else "text/xml"
    return client.post(f"{url}?{urlencode(query)}", data=body, content_type=content_type)


def text_xml(msg_id="1456453720", content=QUESTION):
    return sample("wecom", "text.xml").replace("1456453720", msg_id).replace(QUESTION, content)


# --- official vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["wecom.url_verification.official_A", "wecom.url_verification.official_B"])
def test_official_url_verification_vectors(client, answering_bot, case_id):
    case = VECTORS[case_id]
    vector_channel(answering_bot, case)
    query = case["request"].get("query_string") or urlencode(case["request"]["query"])
    resp = client.get(f"/webhooks/wecom/wecom-vector/?{query}")
    assert resp.status_code == 200
    assert resp.content == case["expect"]["response_body"].encode()  # bare: no quotes, BOM or newline


@pytest.mark.parametrize(
    "case_id", ["wecom.message.official_A", "wecom.message.official_B", "wecom.message.official_json"]
)
def test_official_message_vectors(client, answering_bot, case_id):
    case = VECTORS[case_id]
    vector_channel(answering_bot, case)
    req = case["request"]
    resp = client.post(
        f"/webhooks/wecom/wecom-vector/?{urlencode(req['query'])}",
        data=req["body"].encode(),
        content_type=req["headers"]["Content-Type"],
    )
    assert resp.status_code == 200
    inbound = InboundMessage.objects.get()
    fields = case["expect"]["fields"]
    assert inbound.platform_message_id == fields["message_id"]
    assert inbound.user_id == fields["user_id"]
    assert inbound.text == fields["text"]


@pytest.mark.parametrize("case_id", ["wecom.message.official_A", "wecom.message.official_B"])
def test_official_vectors_decrypt_to_the_published_plaintext(case_id):
    case = VECTORS[case_id]
    cfg, req = case["config"], case["request"]
    encrypt = xml_encrypt_value(req["body"])
    assert crypto.signature_matches(
        req["query"]["msg_signature"], cfg["token"], req["query"]["timestamp"], req["query"]["nonce"], encrypt
    )
    assert crypto.decrypt(encrypt, cfg["encoding_aes_key"], cfg["receive_id"]) == case["expect"]["decrypted_plaintext"]


def test_padding_to_32_bytes_is_accepted():
    # A plaintext whose padded length needs more than 16 pad bytes: strict 16-byte PKCS#7 would reject it.
    key = WECOM_CREDENTIALS["encoding_aes_key"]
    for size in range(1, 40):
        text = "x" * size
        assert crypto.decrypt(crypto.encrypt(text, key, "corp"), key, "corp") == text


def test_wrong_receive_id_vector(client, answering_bot, stored):
    case = VECTORS["wecom.message.official_B"]
    channel = vector_channel(answering_bot, case)
    channel.credentials = {**channel.credentials, "corp_id": "ww_other_corp"}
    channel.save()
    req = case["request"]
    resp = client.post(
        f"/webhooks/wecom/wecom-vector/?{urlencode(req['query'])}", data=req["body"].encode(), content_type="text/xml"
    )
    assert resp.status_code == 403
    assert stored() == 0


# --- the whole path ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_message_answered_through_fake_wecom_with_cached_token(client, wecom_channel, fake_server):
    install_wecom(fake_server)
    resp = callback(client, text_xml("9001"))
    assert resp.status_code == 200
    assert resp.content == b"success"

    [send] = fake_server.requests_to("/cgi-bin/message/send")
    assert send.query["access_token"] == ["wecom-access-token-0001"]
    assert send.json() == {
        "touser": "ChenJiaShun",
        "msgtype": "markdown",
        "agentid": 1000002,
        "markdown": {"content": "We are open **9:00–18:00**, Monday to Friday."},
    }

    assert callback(client, text_xml("9002"), json_mode=False).status_code == 200
    assert len(fake_server.requests_to("/cgi-bin/message/send")) == 2
    assert len(fake_server.requests_to("/cgi-bin/gettoken")) == 1
    assert fake_server.requests_to("/cgi-bin/gettoken")[0].query == {
        "corpid": ["ww1436e0e65a779aee"],
        "corpsecret": [WECOM_CREDENTIALS["secret"]],
    }
    inbound = InboundMessage.objects.get(platform_message_id="9001")
    assert inbound.reply.text == ANSWER
    assert inbound.reply.delivered_at is not None


@pytest.mark.django_db(transaction=True)
def test_json_mode_callback_is_answered(client, wecom_channel, fake_server):
    install_wecom(fake_server)
    assert callback(client, sample("wecom", "text.json"), json_mode=True).status_code == 200
    assert InboundMessage.objects.get().platform_message_id == "4561255354251345929"
    assert len(fake_server.requests_to("/cgi-bin/message/send")) == 1


@pytest.mark.django_db(transaction=True)
def test_replayed_callback_is_answered_once(client, wecom_channel, fake_server, stored):
    install_wecom(fake_server)
    query, body = wecom_callback(
        text_xml("9100"),
        token=WECOM_CREDENTIALS["token"],
        encoding_aes_key=WECOM_CREDENTIALS["encoding_aes_key"],
        corp_id=WECOM_CREDENTIALS["corp_id"],
    )
    for _ in range(3):  # WeCom retries up to three times
        assert client.post(f"{URL}?{urlencode(query)}", data=body, content_type="text/xml").status_code == 200
    assert stored() == 1
    assert len(fake_server.requests_to("/cgi-bin/message/send")) == 1


def test_expired_token_is_refreshed_once(wecom_channel, fake_server):
    install_wecom(fake_server)
    adapter = get_adapter("wecom")
    cache.set(adapter._token_key(wecom_channel), "stale-token", 3600)
    sent = adapter.send_test_message(wecom_channel, Target(chat_id="ChenJiaShun", user_id="ChenJiaShun"))
    assert sent.raw["errcode"] == 0
    assert [r.query["access_token"] for r in fake_server.requests_to("/cgi-bin/message/send")] == [
        ["stale-token"],
        ["wecom-access-token-0001"],
    ]


def test_long_answers_are_split_at_2048_bytes(wecom_channel, fake_server):
    install_wecom(fake_server)
    answer = "\n\n".join(f"第{i}段：" + "营业时间说明。" * 40 for i in range(12))
    get_adapter("wecom").send(wecom_channel, Target(chat_id="u", user_id="u"), _reply(answer))
    sends = fake_server.requests_to("/cgi-bin/message/send")
    assert len(sends) > 1
    contents = [s.json()["markdown"]["content"] for s in sends]
    assert all(len(c.encode()) <= 2048 for c in contents)
    assert "".join(contents).replace("\n", "") == answer.replace("\n", "")


def test_bad_credentials_are_a_permanent_error(wecom_channel, fake_server):
    fake_server.route("GET", "/cgi-bin/gettoken", lambda req: (200, {"errcode": 40001, "errmsg": "invalid credential"}))
    with pytest.raises(PlatformError) as exc:
        get_adapter("wecom").send_test_message(wecom_channel, Target(chat_id="u", user_id="u"))
    assert exc.value.permanent
    assert "invalid credential" in str(exc.value)


def _reply(text):
    return OutboundReply(markdown=text)


# --- not answered -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["event_enter_agent.xml", "image.xml"])
def test_events_and_other_types_are_acknowledged_and_not_stored(client, wecom_channel, stored, name):
    resp = callback(client, sample("wecom", name))
    assert resp.status_code == 200
    assert resp.content == b"success"
    assert stored() == 0


# --- rejections ---------------------------------------------------------------------------------------


def test_handshake_with_our_own_echostr(client, wecom_channel):
    creds = WECOM_CREDENTIALS
    echostr = crypto.encrypt("8373651297421", creds["encoding_aes_key"], creds["corp_id"])
    sig = crypto.signature(creds["token"], "1700000000", "42", echostr)
    query = urlencode({"msg_signature": sig, "timestamp": "1700000000", "nonce": "42", "echostr": echostr})
    resp = client.get(f"{URL}?{query}")
    assert (resp.status_code, resp.content) == (200, b"8373651297421")
    bad = urlencode({"msg_signature": "0" * 40, "timestamp": "1700000000", "nonce": "42", "echostr": echostr})
    assert client.get(f"{URL}?{bad}").status_code == 401
    assert client.get(URL).status_code == 400


def test_bad_signature(client, wecom_channel, stored):
    query, body = wecom_callback(
        text_xml(),
        token="wrong-token",
        encoding_aes_key=WECOM_CREDENTIALS["encoding_aes_key"],
        corp_id="ww1436e0e65a779aee",
    )
    assert client.post(f"{URL}?{urlencode(query)}", data=body, content_type="text/xml").status_code == 401
    assert client.post(URL, data=body, content_type="text/xml").status_code == 401  # no signature at all
    assert stored() == 0


def test_wrong_aes_key(client, wecom_channel, stored):
    other_key = base64.b64encode(b"k" * 32).decode().rstrip("=")
    query, body = wecom_callback(
        text_xml(), token=WECOM_CREDENTIALS["token"], encoding_aes_key=other_key, corp_id="ww1436e0e65a779aee"
    )
    assert client.post(f"{URL}?{urlencode(query)}", data=body, content_type="text/xml").status_code in (401, 403)
    assert stored() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<xml><Encrypt></Encrypt></xml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>',
        b'{"encrypt": 1}',
        b"{broken json",
    ],
)
def test_malformed_bodies(client, wecom_channel, stored, body):
    query = urlencode({"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2"})
    assert client.post(f"{URL}?{query}", data=body, content_type="text/xml").status_code == 400
    assert stored() == 0


def test_oversized_unknown_and_disabled(client, wecom_channel, settings, stored):
    assert callback(client, text_xml(), url="/webhooks/wecom/nope-nope/").status_code == 404
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 500
    assert callback(client, text_xml(content="x" * 2000)).status_code == 413
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    wecom_channel.enabled = False
    wecom_channel.save()
    assert callback(client, text_xml()).status_code == 404
    assert stored() == 0


def test_render_markdown_subset():
    [text] = WeComAdapter().render("# Title\n\n*it* ~~gone~~ `code`\n\n```\nx = 1\n```")
    assert text == "# Title\n\nit gone `code`\n\nx = 1"
