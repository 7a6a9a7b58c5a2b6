"""A platform API failing for a while loses no reply: the whole path (signed Slack webhook → stored →
pipeline → ``chat.postMessage``) against the fake Slack Web API answering 500 for longer than the
old budget of five claims could wait, with the delivery retries' times scaled down through settings.
Every reply arrives exactly once, no message spends its claims on the outage, and a reply that can
never be delivered is given up where an operator sees it (the undelivered list and the metrics)."""

from __future__ import annotations

import json
import time

import pytest

from apps.conversations import delivery
from apps.conversations.metrics import UndeliveredCollector
from apps.conversations.models import DeliveryState, InboundMessage, Message
from apps.conversations.pipeline.storage import MAX_ATTEMPTS
from apps.core import metrics
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant
from tests.fakes.server import FakeServer
from tests.platforms.slack.fake import SlackWebAPI, slack_signed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
D = DeliveryState
S = InboundMessage.Status
SECRET = "b7c1e0d2f3a4958677a8b9c0d1e2f3a4"
QUESTION = "What are your opening hours?"
ANSWER = "We are open 9 to 17, Monday to Friday."
USERS = 10
SAMPLE = "apps/channels/platforms/slack/samples/message_im.json"


@pytest.fixture
def slack():
    server = FakeServer()
    api = SlackWebAPI(server)
    with server:
        yield api


@pytest.fixture
def scaled_down(settings):
    """The retry schedule of hours, in fractions of a second (the defaults: 5 s doubling to 5 min,
    for 6 h). The adapter's timeout short, so a slow fake never holds a test."""
    settings.PARLEY_DELIVERY_BACKOFF_SECONDS = 0.05
    settings.PARLEY_DELIVERY_BACKOFF_MAX_SECONDS = 0.2
    settings.PLATFORM_API_TIMEOUT = 3.0
    return settings


@pytest.fixture
def channel(slack):
    bot = make_bot(make_tenant("acme"), feedback_links=False)
    make_knowledge(bot, QUESTION, ANSWER)
    return make_channel(
        bot,
        platform="slack",
        key="acme-slack",
        credentials={"signing_secret": SECRET, "bot_token": "xoxb-1111-2222-testtoken", "rating_buttons": "off"},
        api_base=slack.server.url,
    )


def _message(n: int) -> bytes:
    """User ``n`` asks in their own direct-message conversation (one Slack event each)."""
    with open(SAMPLE, "rb") as f:
        payload = json.load(f)
    payload["event_id"] = f"Ev{n:010d}"
    payload["event"].update(
        user=f"U{n:08d}", channel=f"D{n:08d}", client_msg_id=f"m-{n}", ts=f"1731405422.{n:06d}", text=QUESTION
    )
    return json.dumps(payload).encode()


def _post(client, body: bytes) -> int:
    headers = slack_signed(body, SECRET)
    return client.post(
        "/webhooks/slack/acme-slack/", data=body, content_type="application/json", headers=headers
    ).status_code


def _sweep_until(condition, *, timeout: float) -> float:
    """Run the delivery sweeper as beat does (here every 50 ms) until ``condition``; returns the time it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        delivery.sweep_deliveries()
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s")


def _delivered() -> int:
    return Message.objects.filter(role="assistant", delivery_state=D.DELIVERED).count()


def test_replies_outlive_a_platform_outage_and_each_arrives_once(client, slack, channel, scaled_down):
    slack.outage(3600)
    for n in range(USERS):
        assert _post(client, _message(n)) == 200
    # The webhook's task ran at once: each answer was made, the platform refused it, and the message
    # was finished — its claim not given back, so no claim is spent on the platform's outage.
    assert set(InboundMessage.objects.values_list("status", "attempts")) == {(S.ANSWERED, 1)}
    assert Message.objects.filter(role="assistant", delivery_state=D.PENDING).count() == USERS
    assert slack.texts() == []

    # The outage lasts until every reply was refused more often than a message may be claimed (the
    # old behaviour gave up there), then the platform is back.
    replies = Message.objects.filter(role="assistant")
    _sweep_until(lambda: min(replies.values_list("delivery_attempts", flat=True)) > MAX_ATTEMPTS, timeout=60)
    assert not replies.filter(delivery_state=D.DELIVERED).exists()
    slack.outage(0)
    _sweep_until(lambda: _delivered() == USERS, timeout=60)
    assert slack.texts() == [ANSWER] * USERS  # every reply, once
    by_chat = sorted(m["channel"] for m in slack.messages)
    assert by_chat == sorted(f"D{n:08d}" for n in range(USERS))
    assert all(r.delivered_at is not None and r.platform_message_id for r in replies)
    assert set(InboundMessage.objects.values_list("status", "attempts")) == {(S.ANSWERED, 1)}

    for _ in range(5):  # later sweeps and a redelivered webhook send nothing again
        assert delivery.sweep_deliveries() == 0
    assert _post(client, _message(0)) == 200
    assert slack.texts() == [ANSWER] * USERS
    assert delivery.undelivered().count() == 0


def _sample(name: str, **labels) -> float:
    for family in [*UndeliveredCollector().collect(), *metrics.DELIVERIES.collect()]:
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_a_reply_that_can_never_be_delivered_is_given_up_where_operators_see_it(client, slack, channel, scaled_down):
    scaled_down.PARLEY_DELIVERY_RETRY_HOURS = 1.0 / 3600  # one second of retrying
    expired_before = _sample("parley_deliveries_total", outcome="expired")
    slack.outage(3600)
    assert _post(client, _message(1)) == 200
    assert _sample("parley_undelivered_replies") == 1  # waiting: the backlog the alert watches

    _sweep_until(lambda: Message.objects.filter(delivery_state=D.EXPIRED).exists(), timeout=30)
    reply = Message.objects.get(role="assistant")
    assert reply.delivered_at is None and "fatal_error" in reply.delivery_error  # the platform's reason
    assert list(delivery.undelivered()) == [reply]  # the admin's "Undelivered replies" lists it, with why
    assert _sample("parley_deliveries_total", outcome="expired") == expired_before + 1
    assert _sample("parley_undelivered_replies") == 0
    assert slack.texts() == []

    slack.outage(0)  # the platform is back: "retry now" sends it, once
    assert delivery.retry_now(Message.objects.filter(pk=reply.pk)) == 1
    assert slack.texts() == [ANSWER] and delivery.undelivered().count() == 0
