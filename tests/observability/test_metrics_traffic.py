"""/metrics after real traffic through webhook → accept → task → reply (tasks run eagerly here)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.conversations.models import InboundMessage
from apps.core import metrics
from tests.factories import make_channel

from .conftest import SECRET, post_message, scrape, value

PII_TEXT = "my phone is 13800138000"


def _delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_traffic_is_counted_with_bounded_labels(client, testim_setup):
    server = testim_setup["server"]
    before = scrape(client)

    assert post_message(client, "acme-testim", msg_id="m-1", text="what are your opening hours").status_code == 200
    assert post_message(client, "acme-testim", msg_id="m-2", text=PII_TEXT).status_code == 200
    assert post_message(client, "acme-testim", msg_id="m-1", text="what are your opening hours").status_code == 200
    assert post_message(client, "acme-testim", msg_id="m-3", text="hi", secret="wrong").status_code == 401

    after = scrape(client)
    sends = server.requests_to("/send")
    assert len(sends) == 2, "each accepted message is answered exactly once"
    assert "9 to 5" in sends[0].json()["text"]

    platform = {"platform": "testim"}
    assert _delta(before, after, "parley_inbound_messages_total", outcome="accepted", **platform) == 2
    assert _delta(before, after, "parley_inbound_messages_total", outcome="duplicate", **platform) == 1
    assert _delta(before, after, "parley_inbound_messages_total", outcome="rejected_signature", **platform) == 1
    assert _delta(before, after, "parley_webhook_ack_seconds_count", **platform) == 3
    assert _delta(before, after, "parley_replies_total", outcome="sent", **platform) == 2

    response = {"tenant": "acme", "bot": "helpdesk", "platform": "testim"}
    assert _delta(before, after, "ai_response_duration_seconds_count", **response) == 2
    # Buckets resolve 0.1 s to 30 s, and both answers (no network model) land in the fastest ones.
    les = {dict(labels)["le"] for (name, labels) in after if name == "ai_response_duration_seconds_bucket"}
    assert {"0.1", "2.0", "30.0", "+Inf"} <= les
    assert _delta(before, after, "ai_response_duration_seconds_bucket", le="30.0", **response) == 2

    # Nothing waits once the eager task has run; known platforms report an explicit zero.
    assert value(after, "parley_inbound_queue_depth", platform="testim") == 0
    assert ("parley_inbound_queue_depth", frozenset({("platform", "web")})) in after

    # No user ids or message text in any label value of Parley's series.
    for name, labels in after:
        if name.startswith(("parley_", "ai_")):
            for _key, label_value in labels:
                assert "4711" not in label_value and "138" not in label_value and "hours" not in label_value


def test_a_platform_refusing_replies_is_counted_as_failed(client, testim_setup):
    bot, server = testim_setup["bot"], testim_setup["server"]
    make_channel(
        bot, platform="testim", key="acme-broken", credentials={"secret": SECRET}, api_base=f"{server.url}/broken"
    )
    before = scrape(client)
    assert post_message(client, "acme-broken", msg_id="b-1", text="what are your opening hours").status_code == 200
    after = scrape(client)
    assert _delta(before, after, "parley_replies_total", platform="testim", outcome="failed") == 1
    assert _delta(before, after, "parley_replies_total", platform="testim", outcome="sent") == 0
    assert InboundMessage.objects.get(platform_message_id="b-1").status == InboundMessage.Status.FAILED


def test_queue_depth_and_oldest_waiting_message(client, testim_setup):
    channel = testim_setup["channel"]
    for i, age in enumerate((30, 125)):
        row = InboundMessage.objects.create(channel=channel, platform_message_id=f"w-{i}", chat_id="c", text="x")
        InboundMessage.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(seconds=age))
    InboundMessage.objects.create(
        channel=channel, platform_message_id="done", chat_id="c", status=InboundMessage.Status.ANSWERED
    )
    after = scrape(client)
    assert value(after, "parley_inbound_queue_depth", platform="testim") == 2
    assert 125 <= value(after, "parley_inbound_oldest_waiting_seconds", platform="testim") < 185


def test_metrics_token_is_required_when_configured(client, db, settings):
    settings.PARLEY_METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200


def test_recording_helpers_keep_labels_bounded(client, db):
    before = scrape(client)
    metrics.record_model_call(
        tenant="acme", model="gpt-main", provider="openai", outcome="weird", seconds=1.2, tokens_in=10, tokens_out=5
    )
    metrics.record_model_call(tenant="acme", model="gpt-main", provider="openai", outcome="breaker_open")
    metrics.record_fallback(tenant="acme", bot="x" * 500)
    after = scrape(client)
    model = {"tenant": "acme", "model": "gpt-main", "provider": "openai"}
    assert _delta(before, after, "parley_model_calls_total", outcome="error", **model) == 1
    assert _delta(before, after, "parley_model_calls_total", outcome="breaker_open", **model) == 1
    assert _delta(before, after, "parley_model_call_duration_seconds_count", **model) == 1
    assert _delta(before, after, "parley_model_tokens_total", direction="in", **model) == 10
    assert _delta(before, after, "parley_fallbacks_total", tenant="acme", bot="x" * 64) == 1
