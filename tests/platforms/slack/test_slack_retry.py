"""Slack retries without duplicates: a ``chat.postMessage`` that timed out after it was written may
have been posted, so the retry looks for the reply's metadata in the conversation's history before
posting again. Against a fake Slack Web API (a real HTTP server on 127.0.0.1) that keeps the
messages it was sent, with their metadata, and answers ``conversations.history`` /
``conversations.replies`` from them."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

import pytest

from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.slack.adapter import SlackAdapter
from apps.conversations import delivery
from apps.conversations.models import InboundMessage, Message
from tests.platforms.slack.test_slack import (
    make_slack_channel,
    post,
    sample,
    signed_headers,
)

#: The adapter's timeout in these tests (PLATFORM_API_TIMEOUT): what a slow answer costs a test, and
#: long enough that an ordinary answer is never late on a busy CI machine.
TIMEOUT = 2.0
#: A slow answer is held until the test ends (released then), at most this long: always after the
#: adapter has given up, however late its timer fires.
HOLD = 30.0
DM = "D0PNCRP9N"  # the direct-message conversation of message_im.json


class HistoryFakeSlack:
    """Posts are kept (with their metadata) the moment they arrive, even when the answer is late.

    ``slow`` is how many of the next ``chat.postMessage`` answers are held back until ``release()``
    (the test's end); ``history_error`` makes the history methods answer ``{"ok": false, "error": …}``."""

    def __init__(self, server) -> None:
        self.server = server
        self.messages: list[dict] = []
        self.slow = 0
        self.refuse: dict[int, tuple[int, dict]] = {}  # n-th post (0-based) → (status, body)
        self.history_error = ""
        self._lock = threading.Lock()
        self._released = threading.Event()
        server.route("POST", "/api/chat.postMessage", self._post)
        server.route("POST", "/api/conversations.history", self._history)
        server.route("POST", "/api/conversations.replies", self._history)

    def _post(self, req):
        data = req.json()
        with self._lock:
            n = len(self.posts) - 1
            if n in self.refuse:
                return self.refuse[n]
            ts = f"{time.time():.6f}"
            message = {"type": "message", "user": "U0BOT", "text": data["text"], "ts": ts}
            for field in ("thread_ts", "metadata"):
                if field in data:
                    message[field] = data[field]
            self.messages.append({"channel": data["channel"], **message})
            slow, self.slow = self.slow > 0, max(0, self.slow - 1)
        if slow:
            self._released.wait(HOLD)
        return 200, {"ok": True, "channel": data["channel"], "ts": ts, "message": message}

    def _history(self, req):
        args = call_args(req)
        if self.history_error:
            return 200, {"ok": False, "error": self.history_error, "needed": "im:history", "provided": "chat:write"}
        with self._lock:
            found = [
                m
                for m in self.messages
                if m["channel"] == args["channel"]
                and float(m["ts"]) >= float(args.get("oldest") or 0)
                and (not args.get("ts") or m.get("thread_ts") == args["ts"])
            ]
        with_metadata = args.get("include_all_metadata") in ("1", "true")
        shown = [
            {k: v for k, v in m.items() if k != "channel" and (with_metadata or k != "metadata")}
            for m in reversed(found)
        ]
        return 200, {"ok": True, "messages": shown[: int(args.get("limit") or 100)], "has_more": False}

    def release(self) -> None:
        """Let the held answers go (their client gave up long ago)."""
        self._released.set()

    @property
    def posts(self):
        return self.server.requests_to("/api/chat.postMessage")

    @property
    def history_reads(self):
        return self.server.requests_to("/api/conversations.")


@pytest.fixture(autouse=True)
def _short_timeout(settings):
    settings.PLATFORM_API_TIMEOUT = TIMEOUT


@pytest.fixture
def slack_channel(db, fake_server):
    return make_slack_channel(fake_server.url)


@pytest.fixture
def slack(fake_server):
    fake = HistoryFakeSlack(fake_server)
    yield fake
    fake.release()


def call_args(req) -> dict[str, str]:
    """The arguments of a Web API call (the SDK sends them in the query or as a form)."""
    args = {k: v[0] for k, v in req.query.items()}
    if req.body:
        args.update({k: v[0] for k, v in parse_qs(req.body.decode()).items()})
    return args


def _metadata(request) -> dict:
    return request.json().get("metadata")


# -- through the whole pipeline --------------------------------------------------------------------------


def _retry_delivery(settings) -> None:
    """The reply the first send did not deliver is retried by the delivery retries (the sweeper's
    next run after the backoff, scaled down here), not by claiming the message again."""
    settings.PARLEY_DELIVERY_BACKOFF_SECONDS = 0.01
    deadline = time.monotonic() + 20
    while Message.objects.filter(role=Message.Role.ASSISTANT, delivery_state="pending").exists():
        assert time.monotonic() < deadline, "the reply was not retried"
        time.sleep(0.05)
        delivery.sweep_deliveries()


@pytest.mark.django_db(transaction=True)
def test_timed_out_send_that_was_posted_is_found_in_history_not_sent_twice(client, slack_channel, slack, settings):
    slack.slow = 1  # Slack posts the answer but replies after the adapter gave up
    body = sample("message_im.json")
    assert post(client, body, signed_headers(body)).status_code == 200
    _retry_delivery(settings)

    assert len(slack.posts) == 1  # the user sees one answer
    assert len(slack.messages) == 1
    (read,) = slack.history_reads
    assert read.path == "/api/conversations.history"
    assert call_args(read)["channel"] == DM and call_args(read)["include_all_metadata"] == "1"
    inbound = InboundMessage.objects.get()
    assert inbound.status == InboundMessage.Status.ANSWERED and inbound.attempts == 1
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.delivered_at is not None
    assert reply.platform_message_id == slack.messages[0]["ts"]
    assert _metadata(slack.posts[0]) == {
        "event_type": "parley_reply",
        "event_payload": {"reply": f"parley-{reply.pk}", "part": 0},
    }


@pytest.mark.django_db(transaction=True)
def test_without_the_history_scope_the_retry_posts_again_and_says_which_scope_to_add(
    client, slack_channel, slack, caplog, settings
):
    slack.slow = 1
    slack.history_error = "missing_scope"
    body = sample("message_im.json")
    with caplog.at_level("WARNING", logger="apps.channels.platforms.slack.adapter"):
        assert post(client, body, signed_headers(body)).status_code == 200
        _retry_delivery(settings)

    assert len(slack.history_reads) == 1
    assert len(slack.posts) == 2  # at-least-once: posted again, the user sees the answer twice
    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED
    assert Message.objects.get(role=Message.Role.ASSISTANT).platform_message_id == slack.messages[1]["ts"]
    warnings = [r for r in caplog.records if r.name == "apps.channels.platforms.slack.adapter"]
    assert len(warnings) == 1
    assert "im:history" in warnings[0].getMessage() and "missing_scope" in warnings[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_a_send_that_fails_cleanly_is_retried_without_reading_history(client, slack_channel, slack, settings):
    slack.refuse[0] = (429, {"ok": False, "error": "ratelimited"})  # Slack answered: nothing was posted
    body = sample("message_im.json")
    assert post(client, body, signed_headers(body)).status_code == 200
    _retry_delivery(settings)
    assert len(slack.posts) == 2 and len(slack.messages) == 1
    assert slack.history_reads == []
    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED


# -- the adapter ---------------------------------------------------------------------------------------


def test_every_message_carries_the_reply_key_in_its_metadata(slack_channel, slack):
    ref = SlackAdapter().send(slack_channel, Target(chat_id=DM), OutboundReply(markdown="Hi", idempotency_key="k-1"))
    (sent,) = slack.posts
    assert _metadata(sent) == {"event_type": "parley_reply", "event_payload": {"reply": "k-1", "part": 0}}
    assert ref.platform_message_id == slack.messages[0]["ts"]
    assert slack.history_reads == []


def test_the_warning_for_a_missing_scope_is_logged_once(slack_channel, slack, caplog):
    slack.history_error = "missing_scope"
    adapter = SlackAdapter()
    with caplog.at_level("WARNING", logger="apps.channels.platforms.slack.adapter"):
        for n in range(2):
            slack.slow = 1
            reply = OutboundReply(markdown=f"Answer {n}", idempotency_key=f"k-{n}")
            with pytest.raises(PlatformError) as err:
                adapter.send(slack_channel, Target(chat_id=DM), reply)
            assert not err.value.permanent
            adapter.send(slack_channel, Target(chat_id=DM), reply)
    assert len(slack.history_reads) == 2 and len(slack.posts) == 4
    assert len([r for r in caplog.records if "im:history" in r.getMessage()]) == 1


def test_a_long_answer_resumes_after_the_parts_already_posted(slack_channel, slack):
    long = "\n\n".join(f"Paragraph {i}: " + "words " * 150 for i in range(8))
    parts = SlackAdapter().render(long)
    assert len(parts) == 2
    slack.refuse[1] = (500, {"ok": False, "error": "internal_error"})  # may or may not have been posted
    reply = OutboundReply(markdown=long, idempotency_key="k-long")
    adapter = SlackAdapter()
    with pytest.raises(PlatformError):
        adapter.send(slack_channel, Target(chat_id=DM), reply)
    ref = adapter.send(slack_channel, Target(chat_id=DM), reply)
    # Part 1 was not in the history: posted once more; part 0 is never posted again.
    assert [p.json()["text"] for p in slack.posts] == [parts[0], parts[1], parts[1]]
    assert [m["text"] for m in slack.messages] == parts
    assert ref.platform_message_id == slack.messages[0]["ts"]
    assert len(slack.history_reads) == 1
    # Delivered: a later send of the same key (a new attempt of the whole answer) is not suppressed.
    adapter.send(slack_channel, Target(chat_id=DM), reply)
    assert len(slack.posts) == 5 and len(slack.history_reads) == 1


def test_a_threaded_reply_is_looked_for_in_its_thread(slack_channel, slack):
    target = Target(chat_id="C0LAN2Q65", is_group=True, reply_context={"thread_ts": "1731405301.297949"})
    reply = OutboundReply(markdown="In the thread", idempotency_key="k-thread")
    slack.slow = 1
    adapter = SlackAdapter()
    with pytest.raises(PlatformError):
        adapter.send(slack_channel, target, reply)
    ref = adapter.send(slack_channel, target, reply)
    (read,) = slack.history_reads
    assert read.path == "/api/conversations.replies" and call_args(read)["ts"] == "1731405301.297949"
    assert len(slack.posts) == 1 and ref.platform_message_id == slack.messages[0]["ts"]


def test_a_refused_connection_is_retried_without_reading_history(slack_channel):
    slack_channel.api_base = "http://127.0.0.1:9"
    reply = OutboundReply(markdown="Hi", idempotency_key="k-refused")
    with pytest.raises(PlatformError) as err:
        SlackAdapter().send(slack_channel, Target(chat_id=DM), reply)
    assert not err.value.permanent
    assert type(err.value) is PlatformError  # not "outcome unknown": nothing reached Slack
