"""Random requests at every registered platform's webhook: never a 500, and nothing stored from a
request that is not authentic.

Two kinds of input: anything at all (random method, query, headers and body, with the header names
the platforms look at), and, for platforms whose signing the tests can reproduce, correctly signed
(and encrypted) requests carrying random payloads, which reach the parsers.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.channels.platforms.registry import get_adapter, platforms
from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_tenant
from tests.fakes.platforms import as_meta
from tests.platforms.conftest import DINGTALK_CREDENTIALS, FEISHU_CREDENTIALS, WECOM_CREDENTIALS
from tests.platforms.dingtalk.fake import dingtalk_headers
from tests.platforms.feishu.fake import feishu_event
from tests.platforms.wecom.fake import wecom_callback

FUZZ = settings(
    max_examples=int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KNOWN_CREDENTIALS = {"feishu": FEISHU_CREDENTIALS, "wecom": WECOM_CREDENTIALS, "dingtalk": DINGTALK_CREDENTIALS}
HEADER_NAMES = [
    "X-Lark-Request-Timestamp",
    "X-Lark-Request-Nonce",
    "X-Lark-Signature",
    "timestamp",
    "sign",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "X-Slack-Retry-Num",
    "X-Telegram-Bot-Api-Secret-Token",
    "X-Signature-Ed25519",
    "X-Signature-Timestamp",
    "X-Bot-Appid",
    "Content-Type",
]
QUERY_NAMES = ["msg_signature", "timestamp", "nonce", "echostr", "signature"]

text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=16,
)
bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["encrypt", "type", "challenge", "token", "schema", "op", "d"]), json_values).map(
        lambda v: json.dumps(v).encode()
    ),
    text.map(lambda t: f"<xml><Encrypt>{t}</Encrypt></xml>".encode()),
)


def _credentials(platform: str) -> dict:
    if platform in KNOWN_CREDENTIALS:
        return dict(KNOWN_CREDENTIALS[platform])
    adapter = get_adapter(platform)
    return {key: f"fuzz-{key}-0123456789abcdef0123456789abcdef" for key in adapter.credential_keys}


@pytest.fixture
def fuzz_channels(db):
    bot = make_bot(make_tenant("fuzz-co"), slug="fuzz")
    return {p: make_channel(bot, platform=p, key=f"fuzz-{p}", credentials=_credentials(p)) for p in platforms()}


def test_every_registered_platform_is_covered(fuzz_channels):
    assert {"feishu", "wecom", "dingtalk"} <= set(fuzz_channels)


@FUZZ
@given(
    platform=st.sampled_from(platforms()),
    method=st.sampled_from(["GET", "POST", "POST", "PUT"]),
    query=st.dictionaries(st.sampled_from(QUERY_NAMES), text, max_size=4),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), text, max_size=6),
    body=bodies,
)
def test_random_requests_never_500_and_store_nothing(client, fuzz_channels, platform, method, query, headers, body):
    url = f"/webhooks/{platform}/fuzz-{platform}/"
    if query:
        url += "?" + urlencode(query)
    meta = as_meta({k: v for k, v in headers.items() if k != "Content-Type"})
    content_type = headers.get("Content-Type") or "application/json"
    resp = client.generic(method, url, data=body, content_type=content_type, **meta)
    assert resp.status_code < 500
    assert InboundMessage.objects.count() == 0


# --- authentic requests with random payloads ------------------------------------------------------


feishu_payloads = st.fixed_dictionaries(
    {
        "schema": st.sampled_from(["2.0", "1.0"]) | json_values,
        "header": st.fixed_dictionaries(
            {"token": st.just(FEISHU_CREDENTIALS["verification_token"])},
            optional={
                "event_type": st.sampled_from(["im.message.receive_v1", "im.message.message_read_v1"]) | text,
                "event_id": text | json_values,
                "app_id": st.just(FEISHU_CREDENTIALS["app_id"]) | json_values,
            },
        ),
        "event": json_values
        | st.fixed_dictionaries(
            {
                "message": st.fixed_dictionaries(
                    {},
                    optional={
                        "message_type": st.sampled_from(["text", "post", "image"]) | json_values,
                        "content": json_values.map(json.dumps) | text,
                        "chat_type": st.sampled_from(["p2p", "group"]) | json_values,
                        "chat_id": json_values,
                        "message_id": json_values,
                        "mentions": json_values,
                    },
                )
            },
            optional={"sender": json_values},
        ),
    }
)


@FUZZ
@given(payload=feishu_payloads | st.dictionaries(text, json_values).map(lambda d: {**d, "type": "url_verification"}))
def test_feishu_signed_random_events_never_500(client, fuzz_channels, payload):
    body, headers = feishu_event(payload, encrypt_key=FEISHU_CREDENTIALS["encrypt_key"])
    resp = client.post("/webhooks/feishu/fuzz-feishu/", data=body, **as_meta(headers))
    assert resp.status_code < 500


wecom_fields = st.dictionaries(
    st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "AgentID", "Event"]),
    st.sampled_from(["text", "event", "image", ""]) | st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    max_size=8,
)


def _xml(fields: dict) -> str:
    from xml.sax.saxutils import escape

    return "<xml>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items()) + "</xml>"


@FUZZ
@given(
    plaintext=wecom_fields.map(_xml) | wecom_fields.map(json.dumps) | st.text(max_size=200),
    json_mode=st.booleans(),
)
def test_wecom_signed_random_messages_never_500(client, fuzz_channels, plaintext, json_mode):
    creds = WECOM_CREDENTIALS
    query, body = wecom_callback(
        plaintext,
        token=creds["token"],
        encoding_aes_key=creds["encoding_aes_key"],
        corp_id=creds["corp_id"],
        json_mode=json_mode,
    )
    resp = client.post(f"/webhooks/wecom/fuzz-wecom/?{urlencode(query)}", data=body, content_type="text/xml")
    assert resp.status_code < 500


_DISTINCT_MS = itertools.count()
dingtalk_payloads = st.fixed_dictionaries(
    {"msgId": st.uuids().map(str) | json_values},
    optional={
        "msgtype": st.sampled_from(["text", "richText", "picture"]) | json_values,
        "text": json_values | st.fixed_dictionaries({"content": json_values}),
        "content": json_values,
        "conversationType": st.sampled_from(["1", "2"]) | json_values,
        "conversationId": json_values,
        "senderStaffId": json_values,
        "isInAtList": json_values,
        "sessionWebhook": json_values,
        "sessionWebhookExpiredTime": json_values,
    },
)


@FUZZ
@given(payload=dingtalk_payloads)
def test_dingtalk_signed_random_messages_never_500(client, fuzz_channels, payload):
    # A fresh timestamp per example: a signature is accepted for one msgId only.
    headers = dingtalk_headers(
        DINGTALK_CREDENTIALS["client_secret"], timestamp_ms=int(time.time() * 1000) + next(_DISTINCT_MS)
    )
    resp = client.post("/webhooks/dingtalk/fuzz-dingtalk/", data=json.dumps(payload).encode(), **as_meta(headers))
    assert resp.status_code < 500


def test_nul_and_lone_surrogates_are_stored_cleaned(client, fuzz_channels):
    # Found by the fuzz test: PostgreSQL text and jsonb cannot hold NUL, and lone surrogates cannot be encoded.
    body = '{"msgId": "m-nul", "msgtype": "text", "text": {"content": "hi\\u0000 there \\ud800"}, "x\\u0000": 1}'
    headers = dingtalk_headers(DINGTALK_CREDENTIALS["client_secret"])
    resp = client.post("/webhooks/dingtalk/fuzz-dingtalk/", data=body.encode(), **as_meta(headers))
    assert resp.status_code == 200
    assert InboundMessage.objects.get().text == "hi there ?"
