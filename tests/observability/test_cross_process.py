"""Several processes, one picture: two gunicorn (uvicorn) web workers and a Celery worker share
PROMETHEUS_MULTIPROC_DIR; real webhooks go in, replies come out at a fake platform API, and any
scrape of /metrics shows the totals of all of them. The Celery worker's log lines carry the trace
id the webhook request was given.

Needs PostgreSQL and Redis (the processes share the test database and the broker): CI has both.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.conf import settings

from .conftest import parse_metrics, value
from .testim import PLATFORM, sign

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),  # three processes start on a shared, busy CI machine
    pytest.mark.skipif(
        settings.EMBEDDED, reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL shared by several processes"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_database_url() -> str:
    """DATABASE_URL pointing at the test database pytest-django created (the one this test writes to)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def cluster(testim_setup, tmp_path):
    """gunicorn with 2 workers + a Celery worker, sharing one multiprocess directory."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PARLEY_TASKS_MODE": "celery",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "PYTHONPATH": str(ROOT),
        "DB_CONN_MAX_AGE": "0",
    }
    (tmp_path / "metrics").mkdir()
    web_log = open(tmp_path / "web.log", "w+")  # noqa: SIM115 - closed below
    worker_log = open(tmp_path / "worker.log", "w+")  # noqa: SIM115
    web = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "-c",
            str(Path(__file__).with_name("gunicorn_testim.py")),
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=web_log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.observability.run_worker"],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def web_up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait_for(web_up, 90, "gunicorn to answer /healthz")
        yield {"base": base, "worker_log": tmp_path / "worker.log", "multiproc": tmp_path / "metrics", **testim_setup}
    finally:
        _stop(worker)
        _stop(web)
        web_log.close()
        worker_log.close()


def _post(base: str, n: int, text: str) -> httpx.Response:
    # One sender per message: a sender's quick follow-ups would be merged into one answer.
    body = json.dumps({"id": f"x-{n}", "chat": f"chat-{n}", "user": f"user-{n}", "text": text}).encode()
    return httpx.post(
        f"{base}/webhooks/{PLATFORM}/acme-testim/",
        content=body,
        headers={"Content-Type": "application/json", "X-Testim-Signature": sign("testim-signing-secret", body)},
        timeout=30,
    )


def test_metrics_and_trace_ids_across_web_and_worker_processes(cluster):
    base, server = cluster["base"], cluster["server"]
    count = 6
    with ThreadPoolExecutor(max_workers=count) as pool:  # concurrent, so both web workers take requests
        responses = list(pool.map(lambda i: _post(base, i, "What are your opening hours?"), range(count)))
    assert [r.status_code for r in responses] == [200] * count
    trace_ids = {r.headers["X-Request-ID"] for r in responses}
    assert len(trace_ids) == count

    _wait_for(lambda: len(server.requests_to("/send")) >= count, 90, "the Celery worker to send every reply")
    assert all("9 to 5" in r.json()["text"] for r in server.requests_to("/send"))
    # The worker counts a reply once the platform took it, and the answer (and its log line) after
    # marking the message answered: a moment after the fake platform saw the request.
    answered = {"tenant": "acme", "bot": "helpdesk", "platform": PLATFORM}

    def settled() -> bool:
        samples = parse_metrics(httpx.get(f"{base}/metrics", timeout=30).text)
        return (
            value(samples, "ai_response_duration_seconds_count", **answered) == count
            and value(samples, "parley_inbound_queue_depth", platform=PLATFORM) == 0
        )

    _wait_for(settled, 30, "every answer counted")

    # Every scrape — whichever web worker answers — shows the totals of all processes: the web
    # workers counted the inbound messages, the Celery worker the replies and response times.
    for _ in range(4):
        samples = parse_metrics(httpx.get(f"{base}/metrics", timeout=30).text)
        assert value(samples, "parley_inbound_messages_total", platform=PLATFORM, outcome="accepted") == count
        assert value(samples, "parley_webhook_ack_seconds_count", platform=PLATFORM) == count
        assert value(samples, "parley_replies_total", platform=PLATFORM, outcome="sent") == count
        assert value(samples, "ai_response_duration_seconds_count", **answered) == count
        assert value(samples, "parley_inbound_queue_depth", platform=PLATFORM) == 0
    cpu_pids = {dict(labels)["pid"] for (name, labels) in samples if name == "process_cpu_seconds_total"}
    assert len(cpu_pids) >= 3, f"CPU of 2 web workers and the Celery worker expected, got pids {cpu_pids}"

    # django-prometheus' own series are summed across web workers too. (Webhooks take the ASGI
    # webhook lane, which skips the middleware stack; Parley's own webhook series above count them.)
    def healthz_requests() -> float:
        scraped = parse_metrics(httpx.get(f"{base}/metrics", timeout=30).text)
        return sum(
            v
            for (name, labels), v in scraped.items()
            if name == "django_http_requests_total_by_view_transport_method_total"
            and dict(labels).get("view") == "healthz"
        )

    before = healthz_requests()
    with ThreadPoolExecutor(max_workers=count) as pool:
        assert all(
            r.status_code == 200 for r in pool.map(lambda _: httpx.get(f"{base}/healthz", timeout=30), range(count))
        )
    assert healthz_requests() - before == count

    # The worker's JSON log lines carry the trace id each webhook request was given. Celery's own
    # "succeeded" line is the last one written for a task: wait for all of them.
    def log_lines() -> list[dict]:
        text = cluster["worker_log"].read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{") and line.endswith("}")]

    def succeeded_lines() -> list[dict]:
        return [x for x in log_lines() if "succeeded" in x.get("message", "") and x.get("task")]

    with contextlib.suppress(AssertionError):  # what is missing then is asserted below, by name
        _wait_for(lambda: {x.get("trace_id") for x in succeeded_lines()} >= trace_ids, 30, "every task's log")
    lines = log_lines()
    answered_lines = [x for x in lines if x.get("message") == "message answered"]
    assert {x.get("trace_id") for x in answered_lines} == trace_ids
    for line in answered_lines:
        assert (line["tenant"], line["bot"], line["platform"]) == ("acme", "helpdesk", PLATFORM)
        assert line["conversation"]
    # Celery's own "succeeded" line is written outside the pipeline's context: the task prerun
    # handler restored the context from the message headers.
    succeeded = [x for x in lines if "succeeded" in x.get("message", "") and x.get("task")]
    assert {x.get("trace_id") for x in succeeded} >= trace_ids
