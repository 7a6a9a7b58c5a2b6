"""Pipeline benchmark: the pipeline's own cost per message, and what one worker process sustains.

    DATABASE_URL=postgres://…/parley_pipeline REDIS_URL=redis://…/2 \
        .venv/bin/python bench/pipeline_bench.py [--messages 300] [--concurrency 32] [--model-ms 200]

1. **Cost** (in this process, one message at a time, model answering at once): the webhook path
   (``accept_inbound``: insert + rate-limit counters + enqueue to the Redis broker) and the handling
   (``process_inbound``: claim, session, context, router, store, send to a local fake platform),
   minus the model call as the router timed it — i.e. Parley's own time per message.
2. **Throughput**: a real worker process (``-P threads -c <concurrency>``), a fake OpenAI-compatible
   model that takes ``--model-ms`` per answer, ``--messages`` messages from distinct users enqueued
   at once; messages/second from the first enqueue to the last answer delivered.

Creates its own tenant (slug ``bench-pipeline``) and deletes it afterwards. The fakes run in this
process and share the machine's cores with the worker, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from apps.channels.platforms import registry  # noqa: E402
from apps.channels.platforms.base import Inbound  # noqa: E402
from apps.conversations import services  # noqa: E402
from apps.conversations.models import InboundMessage, Message  # noqa: E402
from apps.conversations.pipeline.process import process_inbound  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from tests.conversations.fake_platform import ADAPTER_PATH, PLATFORM  # noqa: E402
from tests.factories import make_bot, make_channel, make_model, make_tenant  # noqa: E402
from tests.fakes.llm import FakeOpenAI  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402

SLUG = "bench-pipeline"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def setup(llm_url: str, platform_url: str):
    Tenant.objects.filter(slug=SLUG).delete()
    tenant = make_tenant(SLUG)
    model = make_model(tenant, endpoint=llm_url, timeout_s=30)
    bot = make_bot(tenant, model=model, rate_limit_per_second=0, user_rate_limit_per_minute=0, feedback_links=True)
    channel = make_channel(bot, platform=PLATFORM, key="bench-pipeline", api_base=platform_url)
    return bot, channel


def inbound(i: int, tag: str) -> Inbound:
    return Inbound(message_id=f"{tag}-{i}", chat_id=f"chat-{tag}-{i}", user_id=f"user-{tag}-{i}", text=f"question {i}?")


def bench_cost(channel, n: int) -> dict:
    settings.TASKS_MODE = "celery"  # accept enqueues to the broker (no worker consumes: purged below)
    accept_ms, handle_ms, own_ms, cpu_ms = [], [], [], []
    rows = []
    for i in range(n):
        started = time.perf_counter()
        (row,) = services.accept_inbound(channel=channel, inbounds=[inbound(i, "cost")])
        accept_ms.append((time.perf_counter() - started) * 1000)
        rows.append(row)
    _purge_broker()
    for row in rows:
        started, cpu_started = time.perf_counter(), time.thread_time()
        process_inbound(row.pk)
        total = (time.perf_counter() - started) * 1000
        cpu_ms.append((time.thread_time() - cpu_started) * 1000)
        reply = Message.objects.get(inbound=row, role="assistant")
        model = sum(a.get("latency_ms", 0) for a in reply.attempts)
        handle_ms.append(total)
        own_ms.append(total - model)
    answered = InboundMessage.objects.filter(channel=channel, status="answered").count()
    return {
        "messages": n,
        "answered": answered,
        "accept_p50_ms": statistics.median(accept_ms),
        "accept_p95_ms": pct(accept_ms, 95),
        "handle_p50_ms": statistics.median(handle_ms),
        "own_p50_ms": statistics.median(own_ms),
        "own_p95_ms": pct(own_ms, 95),
        "own_mean_ms": statistics.fmean(own_ms),
        "cpu_p50_ms": statistics.median(cpu_ms),
        "cpu_mean_ms": statistics.fmean(cpu_ms),
    }


def _purge_broker() -> None:
    from config.celery import app

    app.control.purge()


def bench_throughput(channel, n: int, concurrency: int, timeout: float) -> dict:
    env = {
        **os.environ,
        "PARLEY_TASKS_MODE": "celery",
        "WORKER_CONCURRENCY": str(concurrency),
        "DB_CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
    }
    log = open(ROOT / "var" / "bench-pipeline-worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.conversations.run_worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(1)
        _wait_worker_ready()
        settings.TASKS_MODE = "celery"
        started = time.perf_counter()
        services.accept_inbound(channel=channel, inbounds=[inbound(i, "tp") for i in range(n)])
        enqueued = time.perf_counter() - started
        deadline = time.monotonic() + timeout
        done = 0
        while time.monotonic() < deadline:
            done = (
                InboundMessage.objects.filter(channel=channel, platform_message_id__startswith="tp-")
                .exclude(status__in=["received", "processing"])
                .count()
            )
            if done >= n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        rows = InboundMessage.objects.filter(channel=channel, platform_message_id__startswith="tp-", status="answered")
        latencies = [(r.finished_at - r.received_at).total_seconds() * 1000 for r in rows]
        return {
            "messages": n,
            "answered": len(latencies),
            "concurrency": concurrency,
            "enqueue_s": enqueued,
            "elapsed_s": elapsed,
            "msgs_per_s": len(latencies) / elapsed,
            "latency_p50_ms": statistics.median(latencies) if latencies else 0,
            "latency_p95_ms": pct(latencies, 95) if latencies else 0,
        }
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def _wait_worker_ready(timeout: float = 60) -> None:
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            return
    raise SystemExit("worker did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--cost-messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--model-ms", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    if not (settings.DATABASE_URL.startswith("postgres") and settings.REDIS_URL):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    registry.ADAPTERS[PLATFORM] = ADAPTER_PATH
    registry.get_adapter.cache_clear()
    platform = FakeServer()
    platform.route("POST", "/send", lambda req: (200, {"ok": True}))
    with platform, FakeOpenAI() as llm:
        llm.set(text="A short answer from the fake model.")
        _, channel = setup(llm.url, platform.url)
        try:
            cost = bench_cost(channel, args.cost_messages)
            llm.set(text="A short answer from the fake model.", delay=args.model_ms / 1000)
            throughput = bench_throughput(channel, args.messages, args.concurrency, args.timeout)
        finally:
            connection.close()
            Tenant.objects.filter(slug=SLUG).delete()
    print(f"database {connection.settings_dict['NAME']}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("\n1. Pipeline's own cost per message (model answering at once, one message at a time)")
    print(f"   messages            {cost['messages']} ({cost['answered']} answered)")
    print(f"   webhook path        p50 {cost['accept_p50_ms']:.1f} ms   p95 {cost['accept_p95_ms']:.1f} ms")
    print(f"   handling, total     p50 {cost['handle_p50_ms']:.1f} ms")
    print(
        f"   handling minus model p50 {cost['own_p50_ms']:.1f} ms   p95 {cost['own_p95_ms']:.1f} ms"
        f"   mean {cost['own_mean_ms']:.1f} ms"
    )
    print(
        f"   CPU of the handling thread p50 {cost['cpu_p50_ms']:.1f} ms   mean {cost['cpu_mean_ms']:.1f} ms"
        f"  (≈ {1000 / cost['cpu_mean_ms']:.0f} messages/s per core, GIL-bound)"
    )
    print(f"\n2. One worker process (-P threads -c {throughput['concurrency']}), model takes {args.model_ms} ms")
    print(f"   messages            {throughput['messages']} ({throughput['answered']} answered)")
    print(f"   enqueue all         {throughput['enqueue_s']:.2f} s")
    print(f"   sustained           {throughput['msgs_per_s']:.1f} messages/s over {throughput['elapsed_s']:.1f} s")
    print(
        f"   accept→answered     p50 {throughput['latency_p50_ms']:.0f} ms   p95 {throughput['latency_p95_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
