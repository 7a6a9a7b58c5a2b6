"""Delivery that outlives platform outages: a reply the platform did not take is retried apart from
the message's claims, with growing backoff, until it is delivered — once — or refused for good, or
given up after the retry window (apps/conversations/delivery.py). Real Slack adapter, fake Slack
API on 127.0.0.1 speaking Slack's wire format."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.channels.platforms.base import PlatformError
from apps.conversations import delivery
from apps.conversations.metrics import UndeliveredCollector
from apps.conversations.models import Conversation, DeliveryState, InboundMessage, Message
from apps.core import metrics
from tests.factories import make_bot, make_channel, make_tenant
from tests.fakes.server import FakeServer

pytestmark = pytest.mark.django_db(transaction=True)
D = DeliveryState
ANSWER = "Your parcel ships tomorrow."


class FakeSlack:
    """``chat.postMessage`` as slack.com answers it; ``outage`` calls answered 500 first, or every
    call answered with ``error`` (Slack's ``{"ok": false, "error": …}``)."""

    def __init__(self) -> None:
        self.server = FakeServer()
        self.outage = 0
        self.error = ""
        self.posted: list[dict] = []
        self.server.route("POST", "/api/chat.postMessage", self._post)

    def _post(self, req):
        if self.outage > 0:
            self.outage -= 1
            return 500, {"ok": False, "error": "fatal_error"}
        if self.error:
            return 200, {"ok": False, "error": self.error}
        data = req.json()
        self.posted.append(data)
        return 200, {"ok": True, "channel": data["channel"], "ts": f"1731405999.{len(self.posted):06d}"}

    def calls(self) -> int:
        return len(self.server.requests_to("/api/chat.postMessage"))

    def texts(self) -> list[str]:
        return [p["text"] for p in self.posted]


@pytest.fixture
def slack():
    fake = FakeSlack()
    with fake.server:
        yield fake


@pytest.fixture
def fast_backoff(settings):
    settings.PARLEY_DELIVERY_BACKOFF_SECONDS = 0.02
    settings.PARLEY_DELIVERY_BACKOFF_MAX_SECONDS = 0.1
    return settings


def _reply(slack: FakeSlack, text: str = ANSWER) -> Message:
    """An answer stored for a Slack direct message, not yet delivered."""
    tenant = make_tenant("acme")
    bot = make_bot(tenant, feedback_links=False)
    channel = make_channel(
        bot,
        platform="slack",
        key="acme-slack",
        api_base=slack.server.url,
        credentials={"signing_secret": "s" * 32, "bot_token": "xoxb-test", "rating_buttons": "off"},
    )
    conv = Conversation.objects.create(tenant=tenant, bot=bot, channel=channel, chat_id="D0001", user_id="U1")
    inbound = InboundMessage.objects.create(
        channel=channel,
        platform_message_id="Ev1",
        chat_id="D0001",
        user_id="U1",
        text="Where is my parcel?",
        status=InboundMessage.Status.ANSWERED,
        conversation=conv,
    )
    return Message.objects.create(conversation=conv, inbound=inbound, role="assistant", text=text, source="model")


def _sweep_until(condition, *, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery.sweep_deliveries()
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("timed out sweeping")


def _first_send_failed(reply: Message) -> None:
    delivery.hand_over(reply, PlatformError("Slack chat.postMessage: fatal_error", status=500))


def test_reply_outlives_an_outage_longer_than_the_claim_budget_and_arrives_once(slack, fast_backoff):
    """The platform answers 500 to twelve sends (the old budget was five claims): the reply is
    retried with growing backoff and, once the platform is back, delivered exactly once."""
    reply = _reply(slack)
    slack.outage = 12
    _first_send_failed(reply)
    reply.refresh_from_db()
    assert reply.delivery_state == D.PENDING and reply.delivery_attempts == 1 and reply.delivered_at is None

    _sweep_until(lambda: Message.objects.get(pk=reply.pk).delivery_state == D.DELIVERED)
    reply.refresh_from_db()
    assert slack.texts() == [ANSWER]
    assert slack.calls() == 13  # twelve refused, one taken
    assert reply.delivery_attempts == 14 and reply.delivered_at is not None
    assert reply.platform_message_id == "1731405999.000001"
    for _ in range(5):  # more sweeps never send it again
        assert delivery.sweep_deliveries() == 0
    assert slack.texts() == [ANSWER]


def test_backoff_grows_and_is_capped(settings):
    settings.PARLEY_DELIVERY_BACKOFF_SECONDS = 5
    settings.PARLEY_DELIVERY_BACKOFF_MAX_SECONDS = 300
    waits = [delivery.backoff_seconds(n) for n in (1, 2, 3, 4, 7, 20)]
    assert 4.5 <= waits[0] <= 5.5 and 9 <= waits[1] <= 11 and 18 <= waits[2] <= 22 and 36 <= waits[3] <= 44
    assert 270 <= waits[4] <= 330 and 270 <= waits[5] <= 330


def test_a_reply_waits_for_its_backoff(slack, settings):
    """Retries are not hammered: the next attempt is due only after the backoff."""
    settings.PARLEY_DELIVERY_BACKOFF_SECONDS = 60
    reply = _reply(slack)
    _first_send_failed(reply)
    reply.refresh_from_db()
    assert 50 <= (reply.next_delivery_at - timezone.now()).total_seconds() <= 70
    assert delivery.sweep_deliveries() == 0
    assert slack.calls() == 0


def test_permanent_platform_error_stops_at_once(slack, fast_backoff):
    """Slack says the channel is gone: one attempt, no more, and the reason is kept."""
    reply = _reply(slack)
    slack.outage = 1
    _first_send_failed(reply)
    slack.error = "channel_not_found"
    _sweep_until(lambda: Message.objects.get(pk=reply.pk).delivery_state != D.PENDING)
    reply.refresh_from_db()
    assert reply.delivery_state == D.FAILED and "channel_not_found" in reply.delivery_error
    calls = slack.calls()
    time.sleep(0.3)
    assert delivery.sweep_deliveries() == 0 and slack.calls() == calls == 2


def test_a_permanent_first_failure_is_never_retried(slack, fast_backoff):
    reply = _reply(slack)
    assert delivery.hand_over(reply, PlatformError("bot was blocked by the user", permanent=True)) == D.FAILED
    time.sleep(0.2)
    assert delivery.sweep_deliveries() == 0 and slack.calls() == 0


def test_gives_up_after_the_retry_window(slack, fast_backoff):
    fast_backoff.PARLEY_DELIVERY_RETRY_HOURS = 1
    reply = _reply(slack)
    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(hours=2))
    reply.refresh_from_db()
    slack.outage = 100
    _first_send_failed(reply)
    _sweep_until(lambda: Message.objects.get(pk=reply.pk).delivery_state != D.PENDING)
    reply.refresh_from_db()
    assert reply.delivery_state == D.EXPIRED and reply.delivery_attempts == 2
    assert slack.texts() == []


def test_one_attempt_sends_once_however_often_it_is_dispatched(slack, fast_backoff):
    """Two dispatches of the same attempt (two sweepers, a redelivered task): one sends."""
    reply = _reply(slack)
    _first_send_failed(reply)
    Message.objects.filter(pk=reply.pk).update(next_delivery_at=timezone.now())
    assert delivery.deliver_due(reply.pk, 1) == "delivered"
    assert delivery.deliver_due(reply.pk, 1) == "skipped"
    assert delivery.deliver_due(reply.pk, 2) == "skipped"  # delivered: never again
    assert slack.texts() == [ANSWER]


def test_retry_now_sends_a_refused_reply_again(slack, fast_backoff):
    reply = _reply(slack)
    delivery.hand_over(reply, PlatformError("Slack chat.postMessage: not_in_channel", permanent=True))
    assert delivery.undelivered().count() == 1
    assert delivery.retry_now(Message.objects.filter(pk=reply.pk)) == 1  # the bot was added back
    reply.refresh_from_db()
    assert reply.delivery_state == D.DELIVERED and slack.texts() == [ANSWER]
    assert delivery.undelivered().count() == 0
    assert delivery.retry_now(Message.objects.filter(pk=reply.pk)) == 0  # delivered: nothing to do


def test_metrics_count_outcomes_and_the_backlog(slack, fast_backoff):
    def sample(name: str, **labels) -> float:
        for family in [*UndeliveredCollector().collect(), *metrics.DELIVERIES.collect()]:
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0

    delivered_before = sample("parley_deliveries_total", outcome="delivered")
    retry_before = sample("parley_deliveries_total", outcome="retry")
    assert sample("parley_undelivered_replies") == 0
    reply = _reply(slack)
    slack.outage = 2
    _first_send_failed(reply)
    assert sample("parley_undelivered_replies") == 1
    assert sample("parley_undelivered_oldest_seconds") >= 0
    _sweep_until(lambda: Message.objects.get(pk=reply.pk).delivery_state == D.DELIVERED)
    assert sample("parley_undelivered_replies") == 0
    assert sample("parley_deliveries_total", outcome="delivered") == delivered_before + 1
    assert sample("parley_deliveries_total", outcome="retry") == retry_before + 3
