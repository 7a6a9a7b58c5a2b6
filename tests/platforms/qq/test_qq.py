"""QQ official bot adapter: official vectors, real payload samples re-signed with a test secret, and
the whole path (webhook → accept → task → pipeline → OpenAPI) against a fake QQ API on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.qq.adapter import QQAdapter, signing_key
from apps.channels.platforms.registry import get_adapter
from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant
from tests.platforms.strategies import json_values

SAMPLES = Path(__file__).resolve().parents[3] / "apps/channels/platforms/qq/samples"
VECTORS = {c["id"]: c for c in json.loads((SAMPLES / "official_vectors.json").read_text())["cases"]}

APP_ID = "102043219"
SECRET = "tEsTsEcReT0123456789abcdefXYZ"
QUESTION = "What are your opening hours?"
ANSWER = "We are open **9 to 17**, Monday to Friday. See [hours](https://example.com/hours)."
ANSWER_PLAIN = "We are open 9 to 17, Monday to Friday. See hours."
TOKEN = "qq-access-token-1"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: str = "1725442500", app_id: str = APP_ID) -> dict:
    signature = signing_key(secret).sign(timestamp.encode() + body).hex()
    return {
        "X-Signature-Ed25519": signature,
        "X-Signature-Timestamp": timestamp,
        "X-Signature-Method": "Ed25519",
        "X-Bot-Appid": app_id,
        "User-Agent": "QQBot-Callback",
    }


def post(client, body: bytes, headers: dict, key: str = "acme-qq"):
    return client.post(f"/webhooks/qq/{key}/", data=body, content_type="application/json", headers=headers)


class FakeQQ:
    """The two QQ hosts behind one fake server: /app/getAppAccessToken and /v2/… messages."""

    def __init__(self, server, *, expires_in: str = "7200") -> None:
        self.server = server
        self.tokens = iter([TOKEN, "qq-access-token-2", "qq-access-token-3"])
        server.route(
            "POST",
            "/app/getAppAccessToken",
            lambda req: (200, {"access_token": next(self.tokens), "expires_in": expires_in}),
        )
        server.route("POST", "/v2/", self._message)

    def _message(self, req):
        return 200, {"id": f"qq-sent-{len(self.sent)}", "timestamp": "2024-09-04T17:32:22+08:00"}

    @property
    def token_requests(self):
        return self.server.requests_to("/app/getAppAccessToken")

    @property
    def sent(self):
        return self.server.requests_to("/v2/")


@pytest.fixture
def qq_channel(db, fake_server):
    tenant = make_tenant("acme")
    bot = make_bot(tenant)
    make_knowledge(bot, QUESTION, ANSWER)
    return make_channel(
        bot,
        platform="qq",
        key="acme-qq",
        credentials={"app_id": APP_ID, "app_secret": SECRET},
        api_base=fake_server.url,
    )


@pytest.fixture
def fake_qq(fake_server):
    return FakeQQ(fake_server)


# -- official vectors -------------------------------------------------------------------------------


def test_key_derivation_reproduces_the_official_vector():
    case = VECTORS["qq.keyderivation.official"]
    public = signing_key(case["config"]["bot_secret"]).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert list(public) == case["expect"]["public_key"]


def _vector_channel(case):
    bot = make_bot(make_tenant("vec"))
    creds = {"app_id": case["config"].get("app_id", "11111111"), "app_secret": case["config"]["bot_secret"]}
    return make_channel(bot, platform="qq", key="vec-qq", credentials=creds)


def test_op13_validation_reproduces_the_official_example(client, db):
    case = VECTORS["qq.url_verification.official_op13"]
    _vector_channel(case)
    req = case["request"]
    response = post(client, req["body"].encode(), req["headers"], key="vec-qq")
    assert response.status_code == 200
    assert response.json() == case["expect"]["response_json"]
    assert not InboundMessage.objects.exists()


def test_official_signed_demo_is_accepted_and_acknowledged(client, db):
    case = VECTORS["qq.signature.official_demo"]
    _vector_channel(case)
    req = case["request"]
    response = post(client, req["body"].encode(), req["headers"], key="vec-qq")
    assert response.status_code == 200
    assert response.json() == case["expect"]["response_json"] == {"op": 12, "d": 0}
    assert not InboundMessage.objects.exists()  # a GATEWAY_EVENT_NAME dispatch carries no message


def test_official_signature_over_the_body_as_printed_is_rejected(client, db):
    case = VECTORS["qq.signature.official_demo_as_printed"]
    assert case["expect"]["accept"] is False
    _vector_channel(case)
    req = case["request"]
    response = post(client, req["body"].encode(), req["headers"], key="vec-qq")
    assert response.status_code == 401
    assert not InboundMessage.objects.exists()


# -- the op 13 signing oracle -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d",
    [
        # a forged dispatch as plain_token: signing it would hand out a valid dispatch signature
        {"plain_token": json.dumps({"op": 0, "t": "C2C_MESSAGE_CREATE", "d": {}}), "event_ts": "1725442341"},
        {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": '1725442341{"op":0}'},
        {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": 1725442341},
        {"plain_token": "x" * 65, "event_ts": "1725442341"},
        {"plain_token": "", "event_ts": "1725442341"},
        {"plain_token": "Arq0D5A61EgUu4OxUvOp"},
        {"event_ts": "1725442341"},
    ],
)
def test_op13_refuses_to_sign_anything_but_a_validation_token(client, qq_channel, d):
    body = json.dumps({"op": 13, "d": d}).encode()
    response = post(client, body, {"X-Bot-Appid": APP_ID})
    assert response.status_code == 400
    assert "signature" not in response.json()


def test_op13_for_another_bot_is_refused(client, qq_channel):
    body = sample("validation_op13.json")
    assert post(client, body, {"X-Bot-Appid": "999"}).status_code == 403


def test_op13_signature_verifies_with_the_channel_key(client, qq_channel):
    response = post(client, sample("validation_op13.json"), {"X-Bot-Appid": APP_ID})
    data = response.json()
    signing_key(SECRET).public_key().verify(bytes.fromhex(data["signature"]), b"1725442341Arq0D5A61EgUu4OxUvOp")


# -- a message in, one answer out --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_c2c_message_is_answered_with_a_passive_reply(client, qq_channel, fake_qq):
    body = sample("c2c_message_create.json")
    response = post(client, body, signed_headers(body))
    assert response.status_code == 200
    assert response.json() == {"op": 12, "d": 0}

    assert [r.json() for r in fake_qq.token_requests] == [{"appId": APP_ID, "clientSecret": SECRET}]
    assert len(fake_qq.sent) == 1
    sent = fake_qq.sent[0]
    assert sent.path == "/v2/users/E4F4AEA33253A2797FB897C50B81D7ED/messages"
    assert sent.headers["Authorization"] == f"QQBot {TOKEN}"
    payload = sent.json()
    assert payload["msg_type"] == 0
    assert payload["content"].startswith(ANSWER_PLAIN)
    assert "**" not in payload["content"] and "http" not in payload["content"]  # no URL QQ could refuse
    assert payload["msg_id"] == json.loads(body)["d"]["id"]
    assert payload["msg_seq"] == 1
    inbound = InboundMessage.objects.get()
    assert inbound.status == InboundMessage.Status.ANSWERED
    assert inbound.text == QUESTION and not inbound.is_group


@pytest.mark.django_db(transaction=True)
def test_group_at_message_is_answered_in_the_group(client, qq_channel, fake_qq):
    body = sample("group_at_message_create.json")
    assert post(client, body, signed_headers(body)).status_code == 200
    assert len(fake_qq.sent) == 1
    sent = fake_qq.sent[0]
    assert sent.path == "/v2/groups/6F1C8D4A2B7E9F03C5D8A1B4E7F20A93/messages"
    assert sent.json()["content"].startswith(ANSWER_PLAIN)
    assert sent.json()["msg_id"] == json.loads(body)["d"]["id"]
    inbound = InboundMessage.objects.get()
    assert inbound.is_group and inbound.text == QUESTION  # the leading space QQ adds is gone
    assert inbound.user_id == "9D2D6BB0B0C8C18E67B1F2D4C6A2E5F1"


@pytest.mark.django_db(transaction=True)
def test_redelivered_dispatch_gets_no_second_answer(client, qq_channel, fake_qq):
    body = sample("c2c_message_create.json")
    for timestamp in ("1725442500", "1725442560"):  # QQ's retry is freshly signed
        assert post(client, body, signed_headers(body, timestamp=timestamp)).json() == {"op": 12, "d": 0}
    assert len(fake_qq.sent) == 1
    assert InboundMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_access_token_is_cached_per_channel(client, qq_channel, fake_qq):
    for n in range(2):
        payload = json.loads(sample("c2c_message_create.json"))
        payload["d"]["id"] += str(n)
        body = json.dumps(payload).encode()
        assert post(client, body, signed_headers(body)).status_code == 200
    assert len(fake_qq.sent) == 2
    assert len(fake_qq.token_requests) == 1
    assert {r.headers["Authorization"] for r in fake_qq.sent} == {f"QQBot {TOKEN}"}


def test_token_in_its_last_minute_is_replaced(qq_channel, fake_server):
    fake = FakeQQ(fake_server, expires_in="60")  # already inside the 60 s refresh margin
    adapter = QQAdapter()
    target = Target(chat_id="E4F4AEA33253A2797FB897C50B81D7ED")
    adapter.send_test_message(qq_channel, target)
    adapter.send_test_message(qq_channel, target)
    assert len(fake.token_requests) == 2
    assert [r.headers["Authorization"] for r in fake.sent] == [f"QQBot {TOKEN}", "QQBot qq-access-token-2"]


def test_rejected_token_is_refreshed_once(qq_channel, fake_server):
    fake = FakeQQ(fake_server)
    seen = []

    def message(req):
        seen.append(req.headers["Authorization"])
        if req.headers["Authorization"] == f"QQBot {TOKEN}":
            return 401, {"code": 11244, "message": "token not exist or expire"}
        return 200, {"id": "qq-sent", "timestamp": "2024-09-04T17:32:22+08:00"}

    fake_server.route("POST", "/v2/", message)
    ref = QQAdapter().send_test_message(qq_channel, Target(chat_id="E4F4"))
    assert ref.platform_message_id == "qq-sent"
    assert seen == [f"QQBot {TOKEN}", "QQBot qq-access-token-2"]
    assert len(fake.token_requests) == 2


def test_rating_link_is_left_out_because_qq_refuses_unregistered_urls(qq_channel, fake_qq):
    reply = OutboundReply(markdown="Hi", feedback_url="https://parley.example/feedback/t0k/")
    QQAdapter().send(qq_channel, Target(chat_id="E4F4"), reply)
    assert fake_qq.sent[0].json()["content"] == "Hi"


def test_send_test_message_reports_the_platform_answer(qq_channel, fake_qq):
    ref = get_adapter("qq").send_test_message(qq_channel, Target(chat_id="GRP1", is_group=True))
    assert ref.platform_message_id == "qq-sent-1"
    sent = fake_qq.sent[0]
    assert sent.path == "/v2/groups/GRP1/messages"
    assert "msg_id" not in sent.json()  # an active message: nothing to quote
    assert sent.json()["content"] == "Parley test message ✅"


@pytest.mark.parametrize(
    ("status", "body", "permanent"),
    [
        (500, {"code": 500, "message": "internal"}, False),
        (429, {"code": 22009, "message": "msg limit exceed"}, False),
        (400, {"code": 11255, "err_code": 40011028, "message": "resource not found"}, True),
    ],
)
def test_platform_errors_say_whether_a_retry_can_help(qq_channel, fake_qq, fake_server, status, body, permanent):
    fake_server.route("POST", "/v2/", lambda req: (status, body))
    with pytest.raises(PlatformError) as err:
        QQAdapter().send_test_message(qq_channel, Target(chat_id="E4F4"))
    assert err.value.permanent is permanent
    assert err.value.status == status


def test_refused_credentials_are_a_permanent_error(qq_channel, fake_server):
    fake_server.route("POST", "/app/getAppAccessToken", lambda req: (200, {"code": 100016, "message": "invalid appid"}))
    with pytest.raises(PlatformError) as err:
        QQAdapter().send_test_message(qq_channel, Target(chat_id="E4F4"))
    assert err.value.permanent
    assert SECRET not in str(err.value)


def test_unreachable_api_is_a_temporary_error(qq_channel):
    qq_channel.api_base = "http://127.0.0.1:9"
    with pytest.raises(PlatformError) as err:
        QQAdapter().send_test_message(qq_channel, Target(chat_id="E4F4"))
    assert not err.value.permanent


def test_long_answers_are_split_into_at_most_five_messages():
    chunks = QQAdapter().render("\n\n".join(f"Paragraph {i} " + "word " * 300 for i in range(12)))
    assert 1 < len(chunks) <= 5
    assert all(len(c) <= 2000 for c in chunks)


# -- ignored and rejected requests ---------------------------------------------------------------------


def test_ignored_event_is_acknowledged_and_not_stored(client, qq_channel):
    body = sample("group_add_robot.json")
    response = post(client, body, signed_headers(body))
    assert response.status_code == 200 and response.json() == {"op": 12, "d": 0}
    assert not InboundMessage.objects.exists()


def _tamper(headers: dict, **changes) -> dict:
    return {**headers, **changes}


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda b, h: (b, signed_headers(b, secret="another-secret-entirely")), 401),
        (lambda b, h: (b.replace(b"opening", b"closing"), h), 401),
        (lambda b, h: (b, _tamper(h, **{"X-Signature-Timestamp": "1725442501"})), 401),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "X-Signature-Ed25519"}), 401),
        (lambda b, h: (b, {k: v for k, v in h.items() if k != "X-Signature-Timestamp"}), 401),
        (lambda b, h: (b, _tamper(h, **{"X-Signature-Ed25519": "zz" * 64})), 401),
        (lambda b, h: (b, _tamper(h, **{"X-Signature-Ed25519": h["X-Signature-Ed25519"][:-2]})), 401),
        (lambda b, h: (b, _tamper(h, **{"X-Signature-Ed25519": h["X-Signature-Ed25519"][:-2] + "ff"})), 401),
        (lambda b, h: (b, _tamper(h, **{"X-Signature-Timestamp": "soon"})), 401),
        (lambda b, h: (b, _tamper(h, **{"X-Bot-Appid": "999"})), 403),
    ],
)
def test_bad_signatures_are_rejected_and_nothing_is_stored(client, qq_channel, mutate, status):
    body = sample("c2c_message_create.json")
    body, headers = mutate(body, signed_headers(body))
    assert post(client, body, headers).status_code == status
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"[1, 2, 3]", b'{"op": 0, "t": "C2C_MESSAGE_CREATE", "d": {"id": "m1"}}', b"\xff\xfe"],
)
def test_signed_but_malformed_bodies_are_400(client, qq_channel, body):
    assert post(client, body, signed_headers(body)).status_code == 400
    assert not InboundMessage.objects.exists()


def test_oversized_body_is_413(client, qq_channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"op": 0, "t": "C2C_MESSAGE_CREATE", "d": {"content": "x" * 2000}}).encode()
    assert post(client, body, signed_headers(body)).status_code == 413
    assert not InboundMessage.objects.exists()


def test_unknown_or_disabled_channel_is_404(client, qq_channel):
    body = sample("c2c_message_create.json")
    assert post(client, body, signed_headers(body), key="nope-qq").status_code == 404
    qq_channel.enabled = False
    qq_channel.save()
    assert post(client, body, signed_headers(body)).status_code == 404
    assert not InboundMessage.objects.exists()


# -- authentic requests with random payloads reach the parser: never a 500 ----------------------------

qq_payloads = st.fixed_dictionaries(
    {
        "op": st.sampled_from([0, 12, 13]) | json_values,
        "t": st.sampled_from(["C2C_MESSAGE_CREATE", "GROUP_AT_MESSAGE_CREATE", "GROUP_ADD_ROBOT"]) | json_values,
        "d": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "id": json_values,
                "content": json_values,
                "group_openid": json_values,
                "plain_token": json_values,
                "event_ts": json_values,
                "author": json_values
                | st.fixed_dictionaries({}, optional={"user_openid": json_values, "member_openid": json_values}),
            },
        ),
    },
    optional={"id": json_values},
)


@fuzz_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=qq_payloads)
def test_signed_random_dispatches_never_500(client, qq_channel, payload):
    body = json.dumps(payload).encode()
    assert post(client, body, signed_headers(body)).status_code < 500
