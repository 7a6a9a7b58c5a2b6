"""What the review screens cost with many stored messages: the admin-index dashboard figures
(uncached), a full CSV and JSON Lines export, and one transcript.

Runs in a throw-away test database (the configured one — PostgreSQL when DATABASE_URL is set, else
SQLite). Prints timings.

    .venv/bin/python bench/review_dashboard.py [--tenants 3] [--conversations 2000] [--turns 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.conversations import selectors  # noqa: E402
from apps.conversations.models import Conversation, Feedback, InboundMessage, Message  # noqa: E402
from tests.factories import make_bot, make_channel, make_tenant  # noqa: E402


def seed(tenants: int, conversations: int, turns: int) -> list[int]:
    rnd = random.Random(7)
    now = timezone.now()
    tenant_ids = []
    for t in range(tenants):
        tenant = make_tenant(f"bench-{t}")
        tenant_ids.append(tenant.pk)
        bot = make_bot(tenant, slug="bot")
        channel = make_channel(bot, platform="web", key=f"bench-web-{t}")
        convs = Conversation.objects.bulk_create(
            Conversation(tenant=tenant, bot=bot, channel=channel, chat_id=f"c{i}", user_id=f"u{i}", language="en")
            for i in range(conversations)
        )
        inbound, spread = [], []
        for conv in convs:
            for k in range(turns):
                at = now - timedelta(minutes=rnd.randint(0, 7 * 24 * 60))
                inbound.append(
                    InboundMessage(
                        channel=channel,
                        platform_message_id=f"{conv.pk}-{k}",
                        chat_id=conv.chat_id,
                        text="my phone is 13812345678, where is my order?",
                        status="answered",
                        conversation=conv,
                    )
                )
                spread.append((conv, at))
        inbound = InboundMessage.objects.bulk_create(inbound, batch_size=2000)
        messages = []
        for row, (conv, _at) in zip(inbound, spread, strict=True):
            messages.append(Message(conversation=conv, inbound=row, role="user", text=row.text))
            messages.append(
                Message(
                    conversation=conv,
                    inbound=row,
                    role="assistant",
                    text="It ships tomorrow; we'll mail li.lei@example.com.",
                    model_name="m",
                    source="model",
                    latency_ms=rnd.randint(200, 4000),
                    tokens_in=100,
                    tokens_out=40,
                    cost=Decimal("0.0003"),
                    fallback_used=rnd.random() < 0.1,
                    failed=rnd.random() < 0.02,
                )
            )
        messages = Message.objects.bulk_create(messages, batch_size=2000)
        Feedback.objects.bulk_create(
            (Feedback(message=m, rating=rnd.randint(1, 5)) for m in messages[1::2] if rnd.random() < 0.2),
            batch_size=2000,
        )
        # Spread the rows over the last 7 days (auto_now_add fields need an UPDATE).
        for row, (_conv, at) in zip(inbound, spread, strict=True):
            row.received_at, row.finished_at = at, at + timedelta(milliseconds=rnd.randint(300, 5000))
        InboundMessage.objects.bulk_update(inbound, ["received_at", "finished_at"], batch_size=2000)
        for i, m in enumerate(messages):
            m.created_at = spread[i // 2][1]
        Message.objects.bulk_update(messages, ["created_at"], batch_size=2000)
    return tenant_ids


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        cache.clear()
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        started = time.perf_counter()
        ids = seed(args.tenants, args.conversations, args.turns)
        n = args.tenants * args.conversations * args.turns
        took = time.perf_counter() - started
        print(f"database: {connection.vendor}; seeded {n} inbound + {2 * n} messages in {took:.1f}s")

        t, _ = timed(lambda: selectors.dashboard_figures(tenant_ids=set(ids)))
        print(f"dashboard figures, {args.tenants} tenants x 2 windows (uncached): {t * 1000:.0f} ms")
        one = Conversation.objects.filter(tenant_id=ids[0])
        t, lines = timed(lambda: sum(1 for _ in selectors.export_jsonl(one, reveal=False)), repeat=1)
        print(f"JSON Lines export, {lines} conversations ({lines * args.turns * 2} messages): {t:.2f} s")
        t, size = timed(lambda: sum(len(c) for c in selectors.export_csv(one, reveal=False)), repeat=1)
        print(f"CSV export, same conversations ({size / 1e6:.1f} MB): {t:.2f} s")
        conv = one.first()
        t, _ = timed(lambda: selectors.transcript(conv, reveal=False))
        print(f"transcript of one conversation: {t * 1000:.1f} ms")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
