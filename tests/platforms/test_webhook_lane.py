"""The ASGI webhook lane (apps/channels/asgi.py): webhooks served by a real uvicorn running
``config.asgi`` — as in production — without the middleware stack, and the per-process channel
lookup cache behind it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from apps.channels.models import Channel
from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_tenant
from tests.platforms.web.live import LiveParley

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def slack_event(event_id: str, text: str = "hello there", user: str = "U1") -> bytes:
    ts = f"{time.time():.6f}"
    payload = {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {"type": "message", "channel_type": "im", "channel": "D1", "user": user, "text": text, "ts": ts},
    }
    return json.dumps(payload).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest}


@pytest.fixture
def channel(transactional_db):
    bot = make_bot(make_tenant("acme"), merge_window_ms=0)
    return make_channel(
        bot,
        platform="slack",
        key="acme-slack",
        credentials={"signing_secret": SECRET, "bot_token": "xoxb-test"},
        api_base="http://127.0.0.1:9",
    )


def post(live: LiveParley, body: bytes, headers: dict[str, str], key: str = "acme-slack") -> httpx.Response:
    return httpx.post(f"{live.url}/webhooks/slack/{key}/", content=body, headers=headers, timeout=30)


def test_a_signed_webhook_is_stored_once_and_acknowledged_with_a_trace_id(live, channel):
    body = slack_event("Ev-lane-1", text="When do you open?")
    first = post(live, body, {**signed(body), "X-Request-ID": "abc123trace"})
    again = post(live, body, signed(body))  # the platform redelivers

    assert first.status_code == 200 and again.status_code == 200
    assert first.headers["X-Request-ID"] == "abc123trace"
    assert again.headers["X-Request-ID"] and again.headers["X-Request-ID"] != "abc123trace"
    rows = list(InboundMessage.objects.filter(channel=channel))
    assert [(r.text, r.trace_id) for r in rows] == [("When do you open?", "abc123trace")]


def test_the_lane_refuses_what_the_view_refuses(live, channel):
    body = slack_event("Ev-lane-2")
    assert post(live, body, signed(body, secret="wrong" * 7)).status_code == 401
    assert post(live, body, signed(body), key="no-such-channel").status_code == 404
    unknown = httpx.post(f"{live.url}/webhooks/nosuchplatform/acme-slack/", content=body, timeout=30)
    assert unknown.status_code == 404 and "unknown platform" in unknown.json()["error"]
    assert not InboundMessage.objects.exists()


def test_an_oversized_body_is_refused_with_413_before_it_is_read_whole(live, channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    big = slack_event("Ev-lane-3", text="x" * 200_000)

    def chunks():  # no Content-Length: the lane must count what arrives
        for i in range(0, len(big), 16 * 1024):
            yield big[i : i + 16 * 1024]

    resp = httpx.post(f"{live.url}/webhooks/slack/acme-slack/", content=chunks(), headers=signed(big), timeout=30)
    assert resp.status_code == 413
    assert resp.json() == {"error": "request body too large"}
    assert not InboundMessage.objects.exists()


def test_unreadable_credentials_are_a_clear_503_not_a_500(live, channel):
    # The deployment's encryption keys changed: the stored secret cannot be decrypted.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Channel._meta.db_table} SET credentials = %s WHERE id = %s",
            ["enc1:gAAAAABnot-a-valid-token", channel.pk],
        )
    from apps.channels.services import forget_channels

    forget_channels()
    body = slack_event("Ev-lane-4")
    resp = post(live, body, signed(body))
    assert resp.status_code == 503
    assert "PARLEY_ENCRYPTION_KEYS" in resp.json()["error"]
    assert "gAAAA" not in resp.text


def test_other_paths_still_go_through_django(live, channel):
    resp = httpx.get(f"{live.url}/healthz", timeout=30)
    assert resp.status_code == 200
    assert resp.headers.get("X-Request-ID")  # Django's middleware ran
    assert httpx.get(f"{live.url}/webhooks/", timeout=30).status_code == 404


def test_a_channel_disabled_in_the_admin_is_refused_at_once(live, channel):
    body = slack_event("Ev-lane-5")
    assert post(live, body, signed(body)).status_code == 200  # now cached in this process
    channel.enabled = False
    channel.save()  # the save clears this process's cached lookups
    body = slack_event("Ev-lane-6")
    assert post(live, body, signed(body)).status_code == 404


def test_a_change_made_elsewhere_is_seen_within_the_cache_time(live, channel, settings):
    settings.PARLEY_CHANNEL_CACHE_SECONDS = 0.5
    body = slack_event("Ev-lane-7")
    assert post(live, body, signed(body)).status_code == 200
    # Another process disabled it (no signal reaches this one): refused once the lookup expires.
    Channel.objects.filter(pk=channel.pk).update(enabled=False)
    time.sleep(0.6)
    body = slack_event("Ev-lane-8")
    assert post(live, body, signed(body)).status_code == 404


def test_after_the_database_drops_its_connections_webhooks_are_accepted_again(live, channel):
    from django.db import connection

    body = slack_event("Ev-lane-9")
    assert post(live, body, signed(body)).status_code == 200  # the lane thread now holds a connection
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (terminates the server's sessions)")
    with connection.cursor() as cursor:  # what a database restart does to every other session
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    # The lane thread notices its dead connection and retries on a fresh one: nothing is refused.
    statuses = []
    for n in range(10, 13):
        body = slack_event(f"Ev-lane-{n}")
        statuses.append(post(live, body, signed(body)).status_code)
    assert statuses == [200, 200, 200]
    assert InboundMessage.objects.filter(channel=channel).count() == 4
