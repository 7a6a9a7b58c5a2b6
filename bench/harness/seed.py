"""Create the bench's tenant, model, bots and channels in the bench database; print them as JSON.

Run by the orchestrator with the bench environment (DATABASE_URL of ``parley_bench`` …):

    python -m bench.harness.seed --llm-url http://127.0.0.1:P/v1 --slack-url http://127.0.0.1:Q --tokens N

Settings that differ from a bot's defaults, and why (docs/performance.md repeats them):

* ``merge_window_ms=0`` — the default 1.5 s window holds every short message on purpose (to answer
  several quick lines together); measured latency would then be that window, not Parley.
* ``rate_limit_per_second`` / ``user_rate_limit_per_minute`` raised — the defaults (100/s per bot,
  20/min per user) would turn the 200 and 500 msg/s phases and the closed-loop users into polite
  refusals. The limiter still runs on every message, so its cost is measured.
* ``pii_policy=allow`` — masking would rewrite the ``[bench:<id>]`` marker the fake model echoes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--slack-url", required=True)
    parser.add_argument("--tokens", type=int, default=0, help="web-chat visitor tokens to mint")
    parser.add_argument("--tokens-file", default="")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import django

    django.setup()

    from apps.bots.models import Bot, KnowledgeEntry
    from apps.channels.models import Channel
    from apps.llm.models import ModelConfig
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.create(slug="bench", name="Bench Corp")
    model = ModelConfig.objects.create(
        tenant=tenant,
        name="primary",
        provider="openai",
        endpoint=args.llm_url,
        api_key="bench-key",
        model="bench-model",
        max_tokens=256,
        timeout_s=5,
    )
    common = {
        "tenant": tenant,
        "model": model,
        "system_prompt": "You are the bench assistant. Answer briefly.",
        "merge_window_ms": 0,
        "rate_limit_per_second": 100_000,
        "user_rate_limit_per_minute": 100_000,
        "pii_policy": Bot.PiiPolicy.ALLOW,
    }
    main_bot = Bot.objects.create(slug="main", name="Bench", **common)
    cache_bot = Bot.objects.create(slug="cached", name="Bench cached", cache_answers=True, **common)
    KnowledgeEntry.objects.create(
        bot=main_bot,
        question="What are your opening hours?",
        answer="We are open 9:00–18:00, Monday to Friday.",
        keywords="opening hours,hours",
    )
    signing_secret = secrets.token_hex(16)
    creds = {"signing_secret": signing_secret, "bot_token": "xoxb-bench-" + secrets.token_hex(8)}
    Channel.objects.create(
        bot=main_bot, platform="slack", key="bench-slack", credentials=creds, api_base=args.slack_url
    )
    Channel.objects.create(
        bot=cache_bot, platform="slack", key="bench-slack-cache", credentials=creds, api_base=args.slack_url
    )
    web = Channel.objects.create(bot=main_bot, platform="web", key="bench-web", credentials={}, allowed_origins="*")

    minted = 0
    if args.tokens and args.tokens_file:
        try:
            from apps.channels.platforms.web.visitor import visitor_token_issue
        except ImportError as exc:
            print(f"web chat not available: {exc}", file=sys.stderr)
        else:
            tokens = [visitor_token_issue(channel=web).token for _ in range(args.tokens)]
            Path(args.tokens_file).write_text(json.dumps(tokens))
            minted = len(tokens)

    print(
        json.dumps(
            {
                "slack_key": "bench-slack",
                "slack_cache_key": "bench-slack-cache",
                "web_key": "bench-web",
                "signing_secret": signing_secret,
                "knowledge_question": "What are your opening hours?",
                "tokens": minted,
            }
        )
    )


if __name__ == "__main__":
    main()
