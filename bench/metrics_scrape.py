"""What one /metrics scrape costs: the exposition over many series, in one process and summed over
several processes (multiprocess mode), and the queue collector's query with many stored messages.

    DATABASE_URL=postgres://…/<migrated db> .venv/bin/python bench/metrics_scrape.py [--rows 100000]

The database part writes (and removes again) rows of one throwaway tenant; use a development
database, never production.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Realistic cardinality: 20 tenants x 3 bots x 6 platforms of answers, 20 x 4 models of calls.
WRITER = """
from apps.core import metrics
platforms = ["feishu", "wecom", "dingtalk", "qq", "slack", "telegram"]
for t in range(20):
    for b in range(3):
        for p in platforms:
            metrics.AI_RESPONSE_DURATION.labels(f"tenant{t}", f"bot{b}", p).observe(0.8)
    for m in range(4):
        for outcome in ("ok", "timeout", "error"):
            metrics.record_model_call(tenant=f"tenant{t}", model=f"model{m}", provider="openai", outcome=outcome,
                                      seconds=1.1, tokens_in=100, tokens_out=40)
for p in platforms:
    for o in ("accepted", "duplicate", "rejected_signature"):
        metrics.INBOUND_MESSAGES.labels(p, o).inc()
    metrics.WEBHOOK_ACK.labels(p).observe(0.004)
    metrics.REPLIES.labels(p, "sent").inc()
"""

TIMER = """
import statistics, time
from apps.core import metrics
exec(compile({writer!r}, "writer", "exec")) if {fill} else None
samples = []
for _ in range(20):
    t0 = time.perf_counter()
    body = metrics.exposition(include_queue=False)
    samples.append(time.perf_counter() - t0)
lines = body.count(10)  # newline bytes
print(f"{{statistics.median(samples) * 1000:.1f}} {{len(body)}} {{lines}}")
"""


def python(code: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def exposition_figures(processes: int) -> tuple[float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as tmp:
        if processes > 1:
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
            for _ in range(processes):
                python(WRITER, env)
            ms, size, lines = python(TIMER.format(writer=WRITER, fill=False), env).split()
        else:
            ms, size, lines = python(TIMER.format(writer=WRITER, fill=True), env).split()
    return float(ms), int(size), int(lines)


def queue_figures(rows: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from apps.conversations.metrics import InboundQueueCollector
    from apps.conversations.models import InboundMessage
    from tests.factories import make_bot, make_channel, make_tenant

    tenant = make_tenant("bench-metrics-scrape")
    try:
        channel = make_channel(make_bot(tenant), platform="slack", key="bench-metrics-scrape")
        now = timezone.now()
        batch = [
            InboundMessage(
                channel=channel,
                platform_message_id=f"m{i}",
                chat_id="c",
                status=InboundMessage.Status.RECEIVED if i % 1000 == 0 else InboundMessage.Status.ANSWERED,
                received_at=now,
            )
            for i in range(rows)
        ]
        InboundMessage.objects.bulk_create(batch, batch_size=5000)
        with connection.cursor() as cur:
            cur.execute(f"ANALYZE {InboundMessage._meta.db_table}")
        collector = InboundQueueCollector()
        samples = []
        for _ in range(20):
            t0 = time.perf_counter()
            list(collector.collect())
            samples.append(time.perf_counter() - t0)
        qs = InboundMessage.objects.filter(status=InboundMessage.Status.RECEIVED).order_by().values("channel__platform")
        plan = qs.explain() if connection.vendor == "postgresql" else "(EXPLAIN shown on PostgreSQL only)"
        print(
            f"queue collector, {rows} stored messages ({rows // 1000} waiting): "
            f"median {statistics.median(samples) * 1000:.2f} ms per scrape"
        )
        print("plan of its filter:\n  " + plan.replace("\n", "\n  "))
    finally:
        tenant.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skip-db", action="store_true")
    args = parser.parse_args()
    print("exposition (median of 20), 360 answer series + 240 model-call series + platform series:")
    for processes in (1, 4, 8):
        ms, size, lines = exposition_figures(processes)
        mode = "single process" if processes == 1 else f"multiprocess, {processes} processes' files"
        print(f"  {mode:<34} {ms:7.1f} ms  {size / 1024:7.0f} KiB  {lines} lines")
    if not args.skip_db:
        queue_figures(args.rows)


if __name__ == "__main__":
    main()
