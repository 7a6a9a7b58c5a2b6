"""Pipeline test fixtures: the test-only platform, fake model and platform API servers, and real
Celery worker processes (``python -m tests.conversations.run_worker``) on the test database."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection

from apps.channels.platforms import registry
from tests.factories import make_bot, make_channel, make_model, make_tenant
from tests.fakes.llm import FakeOpenAI
from tests.fakes.server import FakeServer

from .fake_platform import ADAPTER_PATH, PLATFORM

ROOT = Path(__file__).resolve().parents[2]
REAL_BACKENDS = bool(os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL"))
needs_real_backends = pytest.mark.skipif(not REAL_BACKENDS, reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL")
BROKER_KEYS = ("llm", "default", "webhooks", "unacked", "unacked_index", "unacked_mutex")


@pytest.fixture(autouse=True)
def _clear_cache():
    """Like the suite-wide fixture, but on Redis it drops Parley's cache keys and this suite's
    queued tasks only: a FLUSHDB would also drop the broker's queue bindings under a live worker."""
    _reset_redis()
    yield
    _reset_redis()


def _reset_redis() -> None:
    if "redis" not in django_settings.CACHES["default"]["BACKEND"].lower():
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=":1:*", count=1000))
    keys += [k for k in BROKER_KEYS if client.exists(k)]
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def fakeim():
    """Register the test-only platform in this process."""
    registry.PLATFORMS[PLATFORM] = registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH)
    registry.get_adapter.cache_clear()
    yield PLATFORM
    registry.PLATFORMS.pop(PLATFORM, None)
    registry.get_adapter.cache_clear()


class PlatformAPI:
    """The fake platform's send API: every reply the pipeline delivers lands in ``sent``."""

    def __init__(self) -> None:
        self.server = FakeServer()
        self.status = 200
        self.sent: list[dict] = []
        self.server.route("POST", "/send", self._send)

    def _send(self, req):
        if self.status >= 400:
            return (self.status, {"ok": False})
        self.sent.append(req.json())
        return (200, {"ok": True})

    def texts(self) -> list[str]:
        return [s["text"] for s in self.sent]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def platform_api():
    api = PlatformAPI()
    with api.server:
        yield api


@pytest.fixture
def llm():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def make_setup(platform_api, llm) -> Callable:
    """``make_setup(**bot_fields) -> (bot, channel)``: a bot on the fake model with a fakeim channel."""

    def _make(**bot_fields):
        tenant = make_tenant("acme")
        model = make_model(tenant, endpoint=llm.url, timeout_s=10)
        bot = make_bot(tenant, model=model, **bot_fields)
        channel = make_channel(bot, platform=PLATFORM, key="acme-fake", api_base=platform_api.url)
        return bot, channel

    return _make


def post_message(client, channel, **message) -> int:
    """Deliver one message to the webhook as the platform would; returns the HTTP status."""
    message.setdefault("id", f"m-{time.monotonic_ns()}")
    resp = client.post(
        f"/webhooks/{PLATFORM}/{channel.key}/", data=json.dumps(message), content_type="application/json"
    )
    return resp.status_code


def wait_for(condition: Callable[[], object], *, timeout: float = 15, interval: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


class Worker:
    """A Celery worker process on the test database; ``kill()`` is SIGKILL of its process group."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.conversations.run_worker", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: "ready" in self.output() or self.proc.poll() is not None, timeout=timeout, what="worker ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _test_database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def _worker_env(**extra_env: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PARLEY_TASKS_MODE": "celery",
        "PARLEY_INBOUND_LEASE_SECONDS": "60",
        "DB_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }


@pytest.fixture(scope="module")
def shared_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """One worker process for a test module (starting one costs seconds); killed at module end."""
    if not REAL_BACKENDS:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    with django_db_blocker.unblock():
        env = _worker_env()
    worker = Worker(env, [], tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def celery_worker(transactional_db, settings, shared_worker):
    """The module's worker, with this process enqueueing through Celery (``PARLEY_TASKS_MODE=celery``)."""
    settings.TASKS_MODE = "celery"
    return shared_worker


@pytest.fixture
def start_worker(transactional_db, settings, tmp_path):
    """``start_worker(*args, **env) -> Worker``: a worker process of the test's own (for tests that
    kill workers). Every worker started is killed at the end of the test, whatever happens."""
    if not REAL_BACKENDS:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    settings.TASKS_MODE = "celery"
    workers: list[Worker] = []

    def _start(*args: str, **extra_env: str) -> Worker:
        worker = Worker(_worker_env(**extra_env), list(args), tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.wait_ready()
        return worker

    try:
        yield _start
    finally:
        for worker in workers:
            worker.stop()


@pytest.fixture
def beat_args(tmp_path) -> list[str]:
    """Worker options that embed beat (the sweeper) with its schedule file in a temp dir."""
    return ["-B", "-s", str(tmp_path / "beat-schedule")]


__all__ = ["needs_real_backends", "post_message", "wait_for"]
