"""Slack Events API adapter: the official signing example, real event samples re-signed with a test
secret, and the whole path (webhook → accept → task → pipeline → chat.postMessage) against a fake
Slack Web API on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from apps.channels.platforms.base import OutboundReply, PlatformError, RawRequest, SignatureInvalid, Target
from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.slack.adapter import SlackAdapter, slack_text_to_plain
from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant
from tests.platforms.strategies import json_values

SAMPLES = Path(__file__).resolve().parents[3] / "apps/channels/platforms/slack/samples"
VECTORS = {c["id"]: c for c in json.loads((SAMPLES / "official_vectors.json").read_text())["cases"]}

SECRET = "b7c1e0d2f3a4958677a8b9c0d1e2f3a4"
BOT_TOKEN = "xoxb-1111-2222-testtoken"
QUESTION = "What are your opening hours?"
ANSWER = "We are open **9 to 17**, Monday to Friday. See [hours](https://example.com/hours?a=1&b=2)."


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def post(client, body: bytes, headers: dict, key: str = "acme-slack", content_type: str = "application/json"):
    return client.post(f"/webhooks/slack/{key}/", data=body, content_type=content_type, headers=headers)


class FakeSlack:
    """``chat.postMessage`` (``sent``), and ``chat.update`` / ``chat.delete`` answered as Slack does
    for a message that exists (a streamed answer is one posted message, then updates)."""

    def __init__(self, server) -> None:
        self.server = server
        server.route("POST", "/api/chat.postMessage", self._post)
        for method in ("chat.update", "chat.delete"):
            server.route("POST", f"/api/{method}", self._edit)

    def _post(self, req):
        data = req.json()
        return 200, {"ok": True, "channel": data["channel"], "ts": f"1731405999.00000{len(self.sent)}"}

    def _edit(self, req):
        data = req.json()
        return 200, {"ok": True, "channel": data["channel"], "ts": data["ts"]}

    @property
    def sent(self):
        return self.server.requests_to("/api/chat.postMessage")


def make_slack_channel(api_base: str):
    """The Slack channel these tests talk to: a bot that knows ``QUESTION``, the fake Web API at ``api_base``."""
    bot = make_bot(make_tenant("acme"))
    make_knowledge(bot, QUESTION, ANSWER)
    return make_channel(
        bot,
        platform="slack",
        key="acme-slack",
        credentials={"signing_secret": SECRET, "bot_token": BOT_TOKEN},
        api_base=api_base,
    )


@pytest.fixture
def slack_channel(db, fake_server):
    return make_slack_channel(fake_server.url)


@pytest.fixture
def fake_slack(fake_server):
    return FakeSlack(fake_server)


# -- the official signing example ----------------------------------------------------------------------


def _vector_request(case, *, body: str | None = None):
    req = case["request"]
    return RawRequest(
        method="POST",
        path=req["path"],
        headers=req["headers"],
        body=(body if body is not None else req["body"]).encode(),
    )


def test_official_signature_example_is_reproduced_and_accepted(db):
    case = VECTORS["slack.signature.official_doc_vector"]
    secret, ts = case["config"]["signing_secret"], case["request"]["headers"]["X-Slack-Request-Timestamp"]
    digest = hmac.new(secret.encode(), f"v0:{ts}:{case['request']['body']}".encode(), hashlib.sha256).hexdigest()
    assert f"v0={digest}" == case["expect"]["expected_signature"]

    channel = make_channel(make_bot(make_tenant("vec")), platform="slack", key="vec-slack", credentials=case["config"])
    SlackAdapter(clock=lambda: case["now"]).verify(_vector_request(case), channel)  # does not raise


def test_official_example_is_refused_once_stale_or_altered(db):
    case = VECTORS["slack.signature.official_doc_vector"]
    channel = make_channel(make_bot(make_tenant("vec")), platform="slack", key="vec-slack", credentials=case["config"])
    with pytest.raises(SignatureInvalid, match="stale"):
        SlackAdapter(clock=lambda: case["now"] + 301).verify(_vector_request(case), channel)
    with pytest.raises(SignatureInvalid, match="stale"):
        SlackAdapter(clock=lambda: case["now"] - 301).verify(_vector_request(case), channel)
    SlackAdapter(clock=lambda: case["now"] + 300).verify(_vector_request(case), channel)  # the window's edge
    altered = case["request"]["body"].replace("text=&", "text=hi&")
    with pytest.raises(SignatureInvalid):
        SlackAdapter(clock=lambda: case["now"]).verify(_vector_request(case, body=altered), channel)


# -- handshake -----------------------------------------------------------------------------------------


def test_url_verification_returns_the_challenge(client, slack_channel):
    body = sample("url_verification.json")
    response = post(client, body, signed_headers(body))
    assert response.status_code == 200
    assert response.json() == {"challenge": json.loads(body)["challenge"]}


def test_unsigned_url_verification_is_refused(client, slack_channel):
    response = post(client, sample("url_verification.json"), {})
    assert response.status_code == 401
    assert "challenge" not in response.content.decode()


# -- a message in, one answer out -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_app_mention_is_answered_in_a_thread_in_mrkdwn(client, slack_channel, fake_slack):
    body = sample("app_mention.json")
    response = post(client, body, signed_headers(body))
    assert response.status_code == 200

    assert len(fake_slack.sent) == 1
    sent = fake_slack.sent[0]
    assert sent.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    payload = sent.json()
    assert payload["channel"] == "C0LAN2Q65"
    assert payload["thread_ts"] == "1731405301.297949"
    assert payload["text"].startswith(
        "We are open *9 to 17*, Monday to Friday. See <https://example.com/hours?a=1&amp;b=2|hours>."
    )
    inbound = InboundMessage.objects.get()
    assert inbound.text == QUESTION  # the bot's own mention is gone
    assert inbound.is_group and inbound.status == InboundMessage.Status.ANSWERED
    assert inbound.platform_message_id == "Ev08TTHJ8G5A"


@pytest.mark.django_db(transaction=True)
def test_direct_message_is_answered_in_the_conversation(client, slack_channel, fake_slack):
    body = sample("message_im.json")
    assert post(client, body, signed_headers(body)).status_code == 200
    assert len(fake_slack.sent) == 1
    payload = fake_slack.sent[0].json()
    assert payload["channel"] == "D0PNCRP9N"
    assert "thread_ts" not in payload
    assert "*9 to 17*" in payload["text"]
    assert not InboundMessage.objects.get().is_group


@pytest.mark.django_db(transaction=True)
def test_slack_retries_produce_no_second_answer(client, slack_channel, fake_slack):
    body = sample("message_im.json")
    assert post(client, body, signed_headers(body)).status_code == 200
    for n in (1, 2):  # each retry is freshly timestamped and signed
        retry = {**signed_headers(body), "X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"}
        assert post(client, body, retry).status_code == 200
    assert len(fake_slack.sent) == 1
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "message_im_from_bot.json",  # the bot's own answer echoed back as a message event
        "message_changed.json",  # an edit
        "message_channel.json",  # channel chatter: the mention arrives separately as app_mention
        "app_home_opened.json",  # on the named ignore list
    ],
)
def test_events_that_must_not_be_answered_are_acknowledged_and_not_stored(client, slack_channel, name):
    body = sample(name)
    assert post(client, body, signed_headers(body)).status_code == 200
    assert not InboundMessage.objects.exists()


def test_subtype_bot_message_without_user_is_ignored(client, slack_channel):
    payload = json.loads(sample("message_im.json"))
    payload["event"].update({"subtype": "bot_message", "username": "another bot"})
    del payload["event"]["user"]
    body = json.dumps(payload).encode()
    assert post(client, body, signed_headers(body)).status_code == 200
    assert not InboundMessage.objects.exists()


def test_rating_link_is_appended_as_a_slack_link(slack_channel, fake_slack):
    reply = OutboundReply(markdown="Hi", feedback_url="https://parley.example/feedback/t0k/")
    SlackAdapter().send(slack_channel, Target(chat_id="D0PNCRP9N"), reply)
    assert fake_slack.sent[0].json()["text"] == "Hi\n\n<https://parley.example/feedback/t0k/|Rate this answer>"


def test_send_test_message_reports_the_platform_answer(slack_channel, fake_slack):
    ref = get_adapter("slack").send_test_message(slack_channel, Target(chat_id="C0LAN2Q65"))
    assert ref.platform_message_id == "1731405999.000001"
    assert fake_slack.sent[0].json()["text"] == "*Parley* test message ✅"


@pytest.mark.parametrize(
    ("status", "body", "permanent"),
    [
        (200, {"ok": False, "error": "channel_not_found"}, True),
        (200, {"ok": False, "error": "invalid_auth"}, True),
        (429, {"ok": False, "error": "ratelimited"}, False),
        (500, {"ok": False, "error": "internal_error"}, False),
        (502, "<html>Bad gateway</html>", False),
    ],
)
def test_platform_errors_say_whether_a_retry_can_help(slack_channel, fake_server, status, body, permanent):
    fake_server.route("POST", "/api/chat.postMessage", lambda req: (status, body))
    with pytest.raises(PlatformError) as err:
        SlackAdapter().send_test_message(slack_channel, Target(chat_id="C0LAN2Q65"))
    assert err.value.permanent is permanent
    assert BOT_TOKEN not in str(err.value)


def test_unreachable_api_is_a_temporary_error(slack_channel):
    slack_channel.api_base = "http://127.0.0.1:9"
    with pytest.raises(PlatformError) as err:
        SlackAdapter().send_test_message(slack_channel, Target(chat_id="C0LAN2Q65"))
    assert not err.value.permanent


# -- rendering -----------------------------------------------------------------------------------------


def test_mrkdwn_escapes_control_characters_so_answers_cannot_ping_everyone():
    (text,) = SlackAdapter().render("Tell <!channel> & <@U123> about `a<b>`\n\n```\nif a < b && c > d:\n```")
    assert text == (
        "Tell &lt;!channel&gt; &amp; &lt;@U123&gt; about `a&lt;b&gt;`\n\n```\nif a &lt; b &amp;&amp; c &gt; d:\n```"
    )


def test_mrkdwn_converts_the_markdown_tree():
    markdown = "# Title\n\n**bold** _it_ ~~gone~~ [x](tel:+4912345)\n\n- one\n- two\n\n1. first\n\n> quoted"
    (text,) = SlackAdapter().render(markdown)
    assert text == "*Title*\n\n*bold* _it_ ~gone~ x\n\n• one\n• two\n\n1. first\n\n> quoted"


def test_long_answers_are_split_without_breaking_code_blocks():
    code = "\n".join(f"line {i} <tag>" for i in range(600))
    chunks = SlackAdapter().render("Intro paragraph.\n\n```\n" + code + "\n```\n\nOutro.")
    assert len(chunks) > 1
    assert all(len(c) <= 3900 for c in chunks)
    assert all(c.count("```") % 2 == 0 for c in chunks)
    assert "".join(chunks).count("line 599 &lt;tag&gt;") == 1


def test_incoming_slack_text_is_read_as_plain_text():
    text = "<@U0LAN0Z89> is <https://a.example/x?y=1&amp;z=2|this> ok &lt;3 <@U999> <!here>"
    assert slack_text_to_plain(text, bot_user_id="U0LAN0Z89") == "is this ok <3 @U999 @here"


# -- rejected requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda b: signed_headers(b, secret="another-secret"),
        lambda b: signed_headers(b, timestamp=int(time.time()) - 400),  # stale: a replay
        lambda b: signed_headers(b, timestamp=int(time.time()) + 400),
        lambda b: {k: v for k, v in signed_headers(b).items() if k != "X-Slack-Signature"},
        lambda b: {k: v for k, v in signed_headers(b).items() if k != "X-Slack-Request-Timestamp"},
        lambda b: {**signed_headers(b), "X-Slack-Request-Timestamp": "1e9"},
        lambda b: {**signed_headers(b), "X-Slack-Signature": "v0=deadbeef"},
        lambda b: signed_headers(b + b" "),  # signed over different bytes
    ],
)
def test_bad_or_stale_signatures_are_rejected_and_nothing_is_stored(client, slack_channel, make_headers):
    body = sample("message_im.json")
    assert post(client, body, make_headers(body)).status_code == 401
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"type": "event_callback", "event_id": "Ev1"}',
        b'{"type": "event_callback", "event_id": "Ev1", "event": {"type": "message", "channel_type": "im"}}',
    ],
)
def test_signed_but_malformed_bodies_are_400(client, slack_channel, body):
    assert post(client, body, signed_headers(body)).status_code == 400
    assert not InboundMessage.objects.exists()


def test_non_utf8_body_is_rejected_not_crashed(client, slack_channel):
    body = b"\xff\xfe{}"
    assert post(client, body, signed_headers(body)).status_code in (400, 401)


def test_oversized_body_is_413(client, slack_channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"type": "event_callback", "padding": "x" * 2000}).encode()
    assert post(client, body, signed_headers(body)).status_code == 413


def test_unknown_or_disabled_channel_is_404(client, slack_channel):
    body = sample("message_im.json")
    assert post(client, body, signed_headers(body), key="nope-slack").status_code == 404
    slack_channel.enabled = False
    slack_channel.save()
    assert post(client, body, signed_headers(body)).status_code == 404
    assert not InboundMessage.objects.exists()


# -- authentic requests with random payloads reach the parser: never a 500 ----------------------------

slack_payloads = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]) | json_values,
        "event_id": st.uuids().map(str) | json_values,
        "event": json_values
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["app_mention", "message", "reaction_added"]) | json_values},
            optional=dict.fromkeys(
                ("user", "channel", "ts", "text", "thread_ts", "subtype", "bot_id", "channel_type"), json_values
            ),
        ),
    },
    optional={"challenge": json_values, "authorizations": json_values},
)


@fuzz_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=slack_payloads)
def test_signed_random_events_never_500(client, slack_channel, payload):
    body = json.dumps(payload).encode()
    assert post(client, body, signed_headers(body)).status_code < 500
