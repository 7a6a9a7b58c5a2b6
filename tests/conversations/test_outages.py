"""Outages answered quickly and truthfully on the webhook path.

* Redis away (killed: connections refused; frozen: connections accepted, nothing answered): a
  message that was stored is acknowledged 200, fast — the rate limits let it through uncounted,
  and its task, which the queue cannot take, is queued by the sweeper's next run once Redis is
  back; it is answered once.
* PostgreSQL away (killed, behind a TCP proxy this test stops): the webhook answers 503 with
  ``Retry-After`` within about a second — not a hang, not a 500 — and 200 again once it is back.
* A worker that dies mid-answer: its claim is not renewed any more, so the message is taken over
  after the short lease; a live worker's claim is renewed (the heartbeat), however long it works.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from apps.conversations import services
from apps.conversations.models import InboundMessage
from apps.conversations.pipeline.heartbeat import heartbeat
from apps.conversations.pipeline.storage import storage
from apps.core import breaker
from tests.factories import make_bot, make_channel, make_tenant
from tests.fakes.tcp import FrozenServer, TcpProxy
from tests.platforms.test_webhook_lane import SECRET as SLACK_SECRET
from tests.platforms.test_webhook_lane import signed as slack_signed
from tests.platforms.test_webhook_lane import slack_event

from .conftest import REAL_BACKENDS, ROOT, needs_real_backends, post_message, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
S = InboundMessage.Status
#: What "fast" means on a shared, loaded CI machine (the budget on an idle one is about a second).
FAST = 2.5


@pytest.fixture(autouse=True)
def _breakers():
    breaker.redis.reset()
    breaker.database.reset()
    yield
    breaker.redis.reset()
    breaker.database.reset()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisAway:
    """Points the cache and the task queue at a Redis that is away (``away(url)``: not there, or
    frozen), the way a web process finds them in an outage, and back (``back()``: the test's own
    cache and eager task runner)."""

    def __init__(self, settings) -> None:
        from config.celery import app

        self.settings, self.app = settings, app
        self.caches, self.broker = settings.CACHES, app.conf.broker_url

    def _broker(self, url: str) -> None:
        self.app.conf.broker_url = url
        self.app._pool = None
        self.app.amqp._producer_pool = None

    def away(self, url: str) -> None:
        self.settings.CACHES = {
            "default": {
                "BACKEND": "apps.core.cache.RedisCache",
                "LOCATION": url,
                "OPTIONS": {
                    "pool_class": "apps.core.cache.SharedConnectionPool",
                    "socket_connect_timeout": 1.0,
                    "socket_timeout": 1.0,
                },
            }
        }
        self.settings.TASKS_MODE = "celery"
        self._broker(url)

    def back(self) -> None:
        self.settings.CACHES = self.caches
        self.settings.TASKS_MODE = "eager"
        self._broker(self.broker)
        breaker.redis.reset()


@pytest.fixture
def redis(settings):
    outage = RedisAway(settings)
    yield outage
    outage.back()


def _timed_post(client, channel, **message) -> tuple[int, float]:
    started = time.monotonic()
    status = post_message(client, channel, **message)
    return status, time.monotonic() - started


def test_redis_killed_a_stored_message_is_acknowledged_and_answered_once_it_is_back(
    client, make_setup, platform_api, redis
):
    _, channel = make_setup(merge_window_ms=0)
    redis.away(f"redis://127.0.0.1:{_free_port()}/0")  # nothing listens: connections refused
    for n in range(3):
        status, took = _timed_post(client, channel, id=f"m-{n}", user=f"u{n}", text="Where is my parcel?")
        assert status == 200 and took < FAST, (status, took)
    rows = list(InboundMessage.objects.order_by("pk"))
    assert [(r.status, r.error) for r in rows] == [(S.RECEIVED, services.NOT_QUEUED)] * 3
    assert platform_api.sent == []

    redis.back()
    # The next sweep queues them at once (no waiting out the grace for lost tasks).
    assert services.sweep_inbound() == 3
    assert platform_api.texts() == ["Hello from the fake model."] * 3
    assert set(InboundMessage.objects.values_list("status", "error")) == {(S.ANSWERED, "")}
    assert services.sweep_inbound() == 0


def test_redis_frozen_acknowledgements_stay_fast(client, make_setup, platform_api, redis):
    _, channel = make_setup(merge_window_ms=0)
    with FrozenServer() as frozen:  # accepts connections, never answers
        redis.away(frozen.url)
        took = []
        for n in range(4):
            status, seconds = _timed_post(client, channel, id=f"f-{n}", user=f"u{n}", text="hello")
            assert status == 200
            took.append(seconds)
    # The first waits out one Redis timeout (1 s); the next ones skip Redis (breaker.redis).
    assert took[0] < FAST and max(took[1:]) < 0.5, took
    assert InboundMessage.objects.filter(status=S.RECEIVED, error=services.NOT_QUEUED).count() == 4
    redis.back()
    assert services.sweep_inbound() == 4
    assert len(platform_api.sent) == 4


def test_a_lost_task_is_queued_again_after_the_grace(make_setup, platform_api, settings):
    settings.PARLEY_RECEIVED_GRACE_SECONDS = 30
    _, channel = make_setup()
    row = InboundMessage.objects.create(
        channel=channel, platform_message_id="lost", chat_id="c", user_id="u", text="hi"
    )
    assert services.sweep_inbound() == 0  # its task may still be on its way
    InboundMessage.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(seconds=31))
    assert services.sweep_inbound() == 1
    assert platform_api.texts() == ["Hello from the fake model."]


# --- claims: short leases, renewed while the worker lives -----------------------------------------


def test_a_live_workers_claim_is_renewed_and_a_dead_ones_expires(make_setup, settings):
    settings.PARLEY_INBOUND_LEASE_SECONDS = 3  # renewed every second
    _, channel = make_setup()
    alive = InboundMessage.objects.create(channel=channel, platform_message_id="a", chat_id="c", user_id="u1")
    dead = InboundMessage.objects.create(channel=channel, platform_message_id="d", chat_id="c", user_id="u2")
    turn = storage().claim(alive.pk)
    assert storage().claim(dead.pk) is not None  # claimed by a worker that then dies: never renewed
    try:
        with heartbeat.holding(alive.pk, turn.attempt):
            time.sleep(7.0)  # more than two leases
            assert storage().claim(alive.pk) is None  # still held: nobody else may take it
            assert storage().claim(dead.pk) is not None  # expired: taken over
    finally:
        connection.close()
    assert InboundMessage.objects.get(pk=dead.pk).attempts == 2
    assert InboundMessage.objects.get(pk=alive.pk).attempts == 1


# --- PostgreSQL away: 503 fast, from a real web process ---------------------------------------------


def _test_database_url(port: int) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{port}", path="/" + connection.settings_dict["NAME"]))


@pytest.fixture
def web_through_proxy(transactional_db, tmp_path):
    """A uvicorn process serving ``config.asgi`` whose database is reached through a TCP proxy."""
    if not REAL_BACKENDS:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(proxy.port),
        "PARLEY_TASKS_MODE": "celery",
        "PYTHONUNBUFFERED": "1",
        "DB_POOL_MIN_SIZE": "1",
        "DB_POOL_MAX_SIZE": "4",
    }
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.2, what="the web process")
        yield url, proxy
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        proxy.stop()
        log.close()


@needs_real_backends
@pytest.mark.timeout(120)
def test_postgres_killed_the_webhook_answers_503_within_a_second_then_200_again(web_through_proxy):
    url, proxy = web_through_proxy
    bot = make_bot(make_tenant("acme"), merge_window_ms=0)
    make_channel(
        bot,
        platform="slack",
        key="acme-slack",
        credentials={"signing_secret": SLACK_SECRET, "bot_token": "xoxb-test"},
        api_base="http://127.0.0.1:9",
    )

    def post(n: int) -> tuple[int, float, httpx.Response]:
        body = slack_event(f"Ev-pg-{n}", user=f"U{n}")
        started = time.monotonic()
        resp = httpx.post(f"{url}/webhooks/slack/acme-slack/", content=body, headers=slack_signed(body), timeout=30)
        return resp.status_code, time.monotonic() - started, resp

    assert post(0)[0] == 200
    proxy.kill()  # PostgreSQL gone: every connection reset, new ones refused
    for n in range(1, 5):
        status, took, resp = post(n)
        assert status == 503 and took < FAST, (status, took, resp.text)
        assert resp.headers["Retry-After"] and "database" in resp.json()["error"]
    proxy.revive()
    wait_for(lambda: post(10)[0] == 200, timeout=30, interval=0.5, what="200 once PostgreSQL is back")
    assert set(InboundMessage.objects.values_list("platform_message_id", flat=True)) == {"Ev-pg-0", "Ev-pg-10"}


def test_a_frozen_server_never_answers():
    with FrozenServer() as frozen:
        s = socket.create_connection(("127.0.0.1", frozen.port), timeout=1)
        s.settimeout(0.3)
        s.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            s.recv(10)
        s.close()
