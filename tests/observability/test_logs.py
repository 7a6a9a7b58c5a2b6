"""Log lines: one JSON object each, with the context fields, one trace id from webhook to reply,
and no personal data."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from apps.core import metrics
from apps.core.celery_signals import on_worker_init
from apps.core.logging import ContextFilter, JsonFormatter, current_context, log_context
from config.celery import app as celery_app
from tests.factories import make_channel

from .conftest import post_message

PHONE, EMAIL, CARD = "13812345678", "li.lei@example.com", "4111 1111 1111 1111"
FIELDS = {"timestamp", "level", "logger", "message", "tenant", "bot", "platform", "conversation", "trace_id"}


@pytest.fixture
def log_lines():
    """Every log line written during the test, formatted exactly as production formats stdout."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@celery_app.task(name="tests.observability.log_probe")
def log_probe(note: str) -> dict:
    logging.getLogger("tests.observability.probe").info("probe %s", note)
    return current_context()


def test_a_message_is_logged_as_json_with_one_trace_id_from_webhook_to_reply(client, testim_setup, log_lines):
    resp = post_message(client, "acme-testim", msg_id="log-1", text=f"call me on {PHONE} or mail {EMAIL}")
    assert resp.status_code == 200
    trace_id = resp["X-Request-ID"]
    # A failing delivery logs a warning in the same trace.
    make_channel(
        testim_setup["bot"],
        platform="testim",
        key="acme-broken",
        credentials={"secret": "testim-signing-secret"},
        api_base=f"{testim_setup['server'].url}/broken",
    )
    broken = post_message(client, "acme-broken", msg_id="log-2", text=f"card {CARD}")

    lines = log_lines()
    answered = [x for x in lines if x["message"] == "message answered"]
    assert len(answered) == 1
    line = answered[0]
    assert set(line) >= FIELDS
    assert (line["tenant"], line["bot"], line["platform"], line["trace_id"]) == ("acme", "helpdesk", "testim", trace_id)
    assert line["level"] == "info" and line["logger"].startswith("apps.conversations")
    assert line["timestamp"].endswith("+00:00")

    failed = [x for x in lines if x.get("trace_id") == broken["X-Request-ID"] and x["level"] == "warning"]
    assert failed, "the failed delivery is logged in the trace of its webhook request"
    assert failed[0]["platform"] == "testim"

    raw = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
    for secret in (PHONE, EMAIL, CARD, "testim-signing-secret"):
        assert secret not in raw


def test_personal_data_in_messages_and_extra_fields_is_masked(log_lines):
    logger = logging.getLogger("apps.test")
    with log_context(tenant="acme", trace_id="t1"):
        logger.warning("user %s wrote from %s", EMAIL, PHONE, extra={"payload": {"card": CARD}, "note": PHONE})
    (line,) = log_lines()
    assert line["trace_id"] == "t1" and line["tenant"] == "acme" and line["level"] == "warning"
    text = json.dumps(line)
    assert PHONE not in text and EMAIL not in text and CARD not in text
    assert "l***@example.com" in line["message"]


def test_a_task_restores_the_context_its_message_carried(log_lines):
    carried = {"tenant": "acme", "bot": "helpdesk", "platform": "feishu", "trace_id": "abc123"}
    result = log_probe.apply(args=("one",), headers={"parley_context": carried})
    assert result.get() == {**carried, "task": "tests.observability.log_probe"}
    (line,) = [x for x in log_lines() if x["logger"] == "tests.observability.probe"]
    assert line["trace_id"] == "abc123" and line["platform"] == "feishu" and line["task"] == log_probe.name
    assert current_context() == {}, "nothing leaks out of the task"


def test_a_task_without_carried_context_gets_its_own_trace_id():
    first = log_probe.apply(args=("a",)).get()
    second = log_probe.apply(args=("b",)).get()
    assert len(first["trace_id"]) == 32 and first["trace_id"] != second["trace_id"]


def test_a_worker_on_its_own_host_serves_its_metrics(settings):
    settings.PARLEY_WORKER_METRICS_PORT = "0"  # any free port
    settings.PARLEY_WORKER_METRICS_ADDR = "127.0.0.1"
    server = on_worker_init()
    try:
        metrics.REPLIES.labels("slack", "sent").inc()
        port = server.server_address[1]
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        server.server_close()
    assert 'parley_replies_total{outcome="sent",platform="slack"}' in body
    assert "parley_inbound_queue_depth" not in body  # cluster-wide gauges come from the web /metrics
