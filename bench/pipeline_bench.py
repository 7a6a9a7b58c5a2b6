"""Pipeline benchmark: the pipeline's own cost per message, and what one worker process sustains.

    DATABASE_URL=postgres://…/parley_pipeline REDIS_URL=redis://…/2 \
        .venv/bin/python bench/pipeline_bench.py [--messages 300] [--concurrency 32] [--model-ms 200]
        [--cost-only] [--profile] [--show-queries]

1. **Cost** (in this process, one message at a time, model answering at once): the webhook path
   (``accept_inbound``: insert + rate-limit counters + enqueue to the Redis broker) and the handling
   (``process_inbound``: claim, session, context, router, store, send to a local fake platform),
   minus the model call as the router timed it — i.e. Parley's own time per message. The fake
   model and platform run in a child process, so this process's CPU time (every thread, the
   router's model-call thread included) is Parley's alone: "worker CPU ms/message". Every SQL
   statement is counted (``connection.execute_wrapper``) and PostgreSQL's own count of committed
   transactions (``pg_stat_database``) is read before and after: "queries/message" and
   "transactions/message". ``--profile`` runs cProfile in every thread of the handling and prints
   the top functions by cumulative and by own time; ``--show-queries`` prints one message's SQL.
2. **Throughput**: a real worker process (``-P threads -c <concurrency>``), a fake OpenAI-compatible
   model that takes ``--model-ms`` per answer, ``--messages`` messages from distinct users enqueued
   at once; messages/second from the first enqueue to the last answer delivered.

Creates its own tenant (slug ``bench-pipeline``) and deletes it afterwards. The fakes run in a
child process and share the machine's cores with the worker, so the throughput is a floor.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
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


class Fakes:
    """The fake model and platform in a child process (``--serve-fakes``), so their CPU time is not
    counted as Parley's. ``model_delay(s)`` changes how long the model takes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-fakes"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        urls = json.loads(self.proc.stdout.readline())
        self.llm_url, self.platform_url = urls["llm"], urls["platform"]

    def model_delay(self, seconds: float) -> None:
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def serve_fakes() -> None:
    """Child process: run the fakes until stdin closes; each stdin line sets the model's delay."""
    platform = FakeServer()
    platform.route("POST", "/send", lambda req: (200, {"ok": True}))
    with platform, FakeOpenAI() as llm:
        # The test fakes write headers and body separately without TCP_NODELAY: on a kept-alive
        # connection every answer would then wait ~40 ms for a delayed ACK (a real server sets it).
        for server in (platform, llm.server):
            server._server.RequestHandlerClass.disable_nagle_algorithm = True
        llm.set(text=ANSWER)
        print(json.dumps({"llm": llm.url, "platform": platform.url}), flush=True)
        for line in sys.stdin:
            llm.set(text=ANSWER, delay=float(line))
            print("ok", flush=True)


ANSWER = "A short answer from the fake model."


class QueryCounter:
    """Counts the SQL statements this thread's connection sends (``connection.execute_wrapper``)."""

    def __init__(self) -> None:
        self.count = 0
        self.kinds: Counter[str] = Counter()
        self.log: list[str] | None = None

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        self.kinds[sql.lstrip().split(None, 1)[0].upper()] += 1
        if self.log is not None:
            self.log.append(f"{'[tx] ' if context['connection'].in_atomic_block else ''}{sql[:220]}")
        return execute(sql, params, many, context)


class RedisCounter:
    """Counts Redis round trips of this process (replies read; a pipeline counts once)."""

    def __init__(self) -> None:
        import redis.connection

        self.count = 0
        self._cls = redis.connection.AbstractConnection
        self._send = self._cls.send_packed_command

    def __enter__(self) -> RedisCounter:
        counter, send = self, self._send

        def counted(conn, command, check_health=True):
            counter.count += 1
            return send(conn, command, check_health)

        self._cls.send_packed_command = counted
        return self

    def __exit__(self, *exc) -> None:
        self._cls.send_packed_command = self._send


def committed_transactions() -> int:
    """PostgreSQL's count of committed + rolled back transactions in this database, read from a
    connection of its own after this process's connection has flushed its counts (a backend
    otherwise reports them only every second or, when idle, every ten)."""
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15+
    time.sleep(0.2)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        (value,) = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(value)


class AllThreadsProfile:
    """cProfile in this thread and in every thread started while it is on (the router's model-call
    thread), merged into one ``pstats.Stats``. Timed by each thread's CPU clock, so waiting for
    PostgreSQL, Redis or the model costs nothing: the figures are CPU seconds."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []

    def __enter__(self) -> AllThreadsProfile:
        def start_in_thread(frame, event, arg):
            sys.setprofile(None)
            prof = cProfile.Profile(time.thread_time)
            self.profiles.append(prof)
            prof.enable()

        threading.setprofile(start_in_thread)
        main = cProfile.Profile(time.thread_time)
        self.profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *exc) -> None:
        threading.setprofile(None)
        self.profiles[0].disable()

    def stats(self, stream) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0], stream=stream)
        for prof in self.profiles[1:]:
            with contextlib.suppress(TypeError):  # a thread that recorded nothing
                stats.add(prof)
        return stats


def setup(llm_url: str, platform_url: str):
    Tenant.objects.filter(slug=SLUG).delete()
    tenant = make_tenant(SLUG)
    model = make_model(tenant, endpoint=llm_url, timeout_s=30)
    bot = make_bot(tenant, model=model, rate_limit_per_second=0, user_rate_limit_per_minute=0, feedback_links=True)
    channel = make_channel(bot, platform=PLATFORM, key="bench-pipeline", api_base=platform_url)
    return bot, channel


def inbound(i: int, tag: str) -> Inbound:
    return Inbound(message_id=f"{tag}-{i}", chat_id=f"chat-{tag}-{i}", user_id=f"user-{tag}-{i}", text=f"question {i}?")


def bench_cost(channel, n: int, *, profile: bool = False, show_queries: bool = False) -> dict:
    settings.TASKS_MODE = "celery"  # accept enqueues to the broker (no worker consumes: purged below)
    accept_ms, handle_ms, own_ms, cpu_ms, queries, model_ms = [], [], [], [], [], []
    rows = []
    for i in range(n):
        started = time.perf_counter()
        (row,) = services.accept_inbound(channel=channel, inbounds=[inbound(i, "cost")])
        accept_ms.append((time.perf_counter() - started) * 1000)
        rows.append(row)
    _purge_broker()
    # Warm up (imports, first connections, the adapter) outside the figures.
    warm = rows[: min(5, len(rows) // 4)]
    for row in warm:
        process_inbound(row.pk)
    rows = rows[len(warm) :]
    counter = QueryCounter()
    kinds: Counter[str] = Counter()
    shown: list[str] = []
    xact_before = committed_transactions()
    profiler = AllThreadsProfile() if profile else contextlib.nullcontext()
    with RedisCounter() as redis_counter, profiler:
        for index, row in enumerate(rows):
            counter.count, counter.kinds = 0, Counter()
            counter.log = shown if show_queries and index == len(rows) // 2 else None
            started, cpu_started = time.perf_counter(), time.process_time()
            with connection.execute_wrapper(counter):
                process_inbound(row.pk)
            total = (time.perf_counter() - started) * 1000
            cpu_ms.append((time.process_time() - cpu_started) * 1000)
            queries.append(counter.count)
            kinds.update(counter.kinds)
            handle_ms.append(total)
    redis_commands = redis_counter.count
    # The flush statement itself is one transaction, not the pipeline's.
    xacts = committed_transactions() - xact_before - 1
    for row, total in zip(rows, handle_ms, strict=True):
        model_ms.append(_model_ms(row))
        own_ms.append(total - model_ms[-1])
    answered = InboundMessage.objects.filter(channel=channel, status="answered").count()
    result = {
        "messages": len(rows),
        "answered": answered,
        "accept_p50_ms": statistics.median(accept_ms),
        "accept_p95_ms": pct(accept_ms, 95),
        "handle_p50_ms": statistics.median(handle_ms),
        "model_p50_ms": statistics.median(model_ms),
        "own_p50_ms": statistics.median(own_ms),
        "own_p95_ms": pct(own_ms, 95),
        "own_mean_ms": statistics.fmean(own_ms),
        "cpu_p50_ms": statistics.median(cpu_ms),
        "cpu_mean_ms": statistics.fmean(cpu_ms),
        "queries_mean": statistics.fmean(queries),
        "queries_max": max(queries),
        "query_kinds": {k: v / len(rows) for k, v in kinds.most_common()},
        "transactions_mean": xacts / len(rows),
        "redis_mean": redis_commands / len(rows),
        "shown_queries": shown,
    }
    if profile:
        out = io.StringIO()
        stats = profiler.stats(out)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        result["profile"] = out.getvalue()
    return result


def _model_ms(row) -> float:
    """The model's own time for ``row``'s answer, as the router timed it (not part of Parley's cost)."""
    reply = Message.objects.filter(inbound=row, role="assistant").only("attempts").first()
    return sum(a.get("latency_ms", 0) for a in reply.attempts) if reply is not None else 0.0


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
    parser.add_argument("--cost-only", action="store_true", help="measure the cost per message only")
    parser.add_argument("--profile", action="store_true", help="cProfile the handling (all threads)")
    parser.add_argument("--show-queries", action="store_true", help="print the SQL of one message")
    parser.add_argument("--serve-fakes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fakes:
        serve_fakes()
        return
    if not (settings.DATABASE_URL.startswith("postgres") and settings.REDIS_URL):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    (ROOT / "var").mkdir(exist_ok=True)
    call_command("migrate", verbosity=0)
    registry.PLATFORMS[PLATFORM] = registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH)
    registry.get_adapter.cache_clear()
    fakes = Fakes()
    throughput = None
    try:
        _, channel = setup(fakes.llm_url, fakes.platform_url)
        try:
            cost = bench_cost(channel, args.cost_messages, profile=args.profile, show_queries=args.show_queries)
            if not args.cost_only:
                fakes.model_delay(args.model_ms / 1000)
                throughput = bench_throughput(channel, args.messages, args.concurrency, args.timeout)
        finally:
            connection.close()
            Tenant.objects.filter(slug=SLUG).delete()
    finally:
        fakes.close()
    print(f"database {connection.settings_dict['NAME']}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("\n1. Pipeline's own cost per message (model answering at once, one message at a time)")
    print(f"   messages            {cost['messages']} ({cost['answered']} answered)")
    print(f"   webhook path        p50 {cost['accept_p50_ms']:.1f} ms   p95 {cost['accept_p95_ms']:.1f} ms")
    print(
        f"   handling, total     p50 {cost['handle_p50_ms']:.1f} ms   (model, as the router timed it: p50 "
        f"{cost['model_p50_ms']:.1f} ms)"
    )
    print(
        f"   handling minus model p50 {cost['own_p50_ms']:.1f} ms   p95 {cost['own_p95_ms']:.1f} ms"
        f"   mean {cost['own_mean_ms']:.1f} ms"
    )
    print(
        f"   worker CPU/message  p50 {cost['cpu_p50_ms']:.1f} ms   mean {cost['cpu_mean_ms']:.1f} ms"
        f"  (all threads of the handling process; ≈ {1000 / cost['cpu_mean_ms']:.0f} messages/s per core)"
    )
    kinds = ", ".join(f"{k} {v:.1f}" for k, v in cost["query_kinds"].items())
    print(f"   queries/message     mean {cost['queries_mean']:.1f}   max {cost['queries_max']}   ({kinds})")
    print(f"   PostgreSQL transactions/message {cost['transactions_mean']:.1f} (pg_stat_database)")
    print(f"   Redis round trips/message {cost['redis_mean']:.1f}")
    if cost["shown_queries"]:
        print("\n   SQL of one message ([tx]: inside a transaction):")
        for sql in cost["shown_queries"]:
            print(f"     {sql}")
    if "profile" in cost:
        path = ROOT / "var" / "pipeline-profile.txt"
        path.write_text(cost["profile"])
        print(f"\n   profile (cumulative, then own time): {path}")
        print(cost["profile"])
    if throughput is None:
        return
    print(f"\n2. One worker process (-P threads -c {throughput['concurrency']}), model takes {args.model_ms} ms")
    print(f"   messages            {throughput['messages']} ({throughput['answered']} answered)")
    print(f"   enqueue all         {throughput['enqueue_s']:.2f} s")
    print(f"   sustained           {throughput['msgs_per_s']:.1f} messages/s over {throughput['elapsed_s']:.1f} s")
    print(
        f"   accept→answered     p50 {throughput['latency_p50_ms']:.0f} ms   p95 {throughput['latency_p95_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
