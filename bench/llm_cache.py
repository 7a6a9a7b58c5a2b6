"""Answer cache, knowledge entries and single-flight: what a repeated question costs.

Each question is a message from a new chat, handled by the real pipeline (its knowledge,
cached-answer and generate steps) against a fake OpenAI-compatible model on 127.0.0.1 that answers
after ``--model-delay`` seconds and the test-only IM platform's fake send API, in a throw-away test
database (the configured one — PostgreSQL and the Redis cache when DATABASE_URL/REDIS_URL are set,
else SQLite and the local-memory cache). Prints latency percentiles (claim to delivery) and the
number of model calls each kind of answer made.

    .venv/bin/python bench/llm_cache.py [--hits 300] [--model-delay 0.2] [--concurrent 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from apps.channels.platforms import registry  # noqa: E402
from apps.conversations.models import InboundMessage  # noqa: E402
from apps.conversations.pipeline.process import process_inbound  # noqa: E402
from tests.conversations.fake_platform import ADAPTER_PATH, PLATFORM  # noqa: E402
from tests.factories import make_bot, make_channel, make_knowledge, make_model, make_tenant  # noqa: E402
from tests.fakes.llm import FakeOpenAI  # noqa: E402
from tests.fakes.server import FakeServer  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(name: str, ms: list[float], calls: int) -> str:
    return f"| {name:<34} | {len(ms):>5} | {statistics.median(ms):>9.2f} | {pct(ms, 99):>9.2f} | {calls:>11} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=300)
    parser.add_argument("--model-delay", type=float, default=0.2)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()

    old = setup_databases(verbosity=0, interactive=False)
    registry.PLATFORMS[PLATFORM] = registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH)
    registry.get_adapter.cache_clear()
    platform_api = FakeServer()
    platform_api.route("POST", "/send", lambda req: (200, {"ok": True}))
    try:
        with FakeOpenAI() as fake, platform_api:
            fake.set(text="We are open from 9 to 5, Monday to Friday.", delay=args.model_delay, tokens_in=40)
            tenant = make_tenant("bench")
            cfg = make_model(tenant, "bench-model", endpoint=fake.url, timeout_s="5", cost_input_per_1k="0.01")
            bot = make_bot(tenant, "bench-bot", model=cfg, cache_answers=True)
            channel = make_channel(bot, platform=PLATFORM, key="bench-fake", api_base=platform_api.url)
            make_knowledge(bot, "Where is your office?", "Main Street 1.")
            cache.clear()
            lines = []
            chats = iter(range(10**9))
            chats_lock = threading.Lock()

            def timed(question: str) -> float:
                with chats_lock:
                    chat = f"chat-{next(chats)}"
                row = InboundMessage.objects.create(
                    channel=channel, platform_message_id=chat, chat_id=chat, user_id="u1", text=question
                )
                started = time.perf_counter()
                process_inbound(row.pk)
                return (time.perf_counter() - started) * 1000

            before = fake.calls
            miss = [timed(f"When are you open on day {i}?") for i in range(5)]
            lines.append(row("cache miss (model call)", miss, fake.calls - before))

            before = fake.calls
            hits = [timed(f"when are you open on DAY {i % 5}?") for i in range(args.hits)]
            lines.append(row("cache hit", hits, fake.calls - before))

            before = fake.calls
            knowledge = [timed("where is your office") for _ in range(args.hits)]
            lines.append(row("knowledge entry", knowledge, fake.calls - before))

            before = fake.calls
            waits: list[float] = []
            barrier = threading.Barrier(args.concurrent)

            def ask() -> None:
                barrier.wait()
                waits.append(timed("A brand new question nobody asked?"))
                connection.close()

            threads = [threading.Thread(target=ask) for _ in range(args.concurrent)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            lines.append(row(f"{args.concurrent} identical at once", waits, fake.calls - before))

        backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(
            f"pipeline answer paths — model delay {args.model_delay * 1000:.0f} ms, cache {backend}, "
            f"database {connection.vendor}"
        )
        print("| answer path                        | count | p50 ms    | p99 ms    | model calls |")
        print("|------------------------------------|-------|-----------|-----------|-------------|")
        print("\n".join(lines))
    finally:
        registry.PLATFORMS.pop(PLATFORM, None)
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
