"""Usage and cost per tenant / bot / model / day add up to the messages' own figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from apps.bots import routing
from apps.conversations.answer_cache import from_shared, shareable
from apps.conversations.models import Conversation, Message
from apps.llm.usage import usage_by_day, usage_totals
from tests.factories import make_bot, make_channel, make_model, make_tenant


def store(bot, answer, *, days_ago=0):
    """Store an answer the way the pipeline does (figures straight from the Answer)."""
    channel = bot.channels.first() or make_channel(bot, platform="web", key=f"{bot.tenant.slug}-{bot.slug}")
    conv, _ = Conversation.objects.get_or_create(tenant=bot.tenant, bot=bot, channel=channel, chat_id="c1")
    msg = Message.objects.create(
        conversation=conv,
        role="assistant",
        text=answer.text,
        model_config=answer.model_config,
        model_name=answer.model_name,
        provider=answer.provider,
        tokens_in=answer.tokens_in,
        tokens_out=answer.tokens_out,
        cost=answer.cost,
        cached=answer.cached,
        source=answer.source,
        failed=answer.failed,
    )
    if days_ago:
        Message.objects.filter(pk=msg.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))


def test_usage_adds_up_per_tenant_bot_model_and_day(db, fake_openai):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    cheap = make_model(acme, "cheap", endpoint=fake_openai.url, cost_input_per_1k="0.1", cost_output_per_1k="0.2")
    dear = make_model(globex, "dear", endpoint=fake_openai.url, cost_input_per_1k="1", cost_output_per_1k="3")
    helpdesk = make_bot(acme, "helpdesk", model=cheap, cache_answers=True)
    gbot = make_bot(globex, "support", model=dear)
    fake_openai.set(tokens_in=1000, tokens_out=500)

    q = [{"role": "user", "content": "hi"}]
    for days_ago in (0, 0, 1):
        store(helpdesk, routing.ask(bot=helpdesk, messages=q), days_ago=days_ago)
    asked = routing.ask(bot=helpdesk, messages=q)
    store(helpdesk, asked)
    store(helpdesk, from_shared(shareable(asked), latency_ms=1))  # the same answer from the cache: free
    store(gbot, routing.ask(bot=gbot, messages=q))

    rows = usage_by_day()
    today = timezone.now().date()
    acme_today = [r for r in rows if r["tenant"] == "acme" and r["day"] == today]
    by_model = {r["model"]: r for r in acme_today}
    assert by_model["cheap"]["tokens_in"] == 3000 and by_model["cheap"]["tokens_out"] == 1500
    assert by_model["cheap"]["cost"] == Decimal("0.6")  # 3 × (0.1 + 0.1)
    assert by_model[""]["cached"] == 1 and by_model[""]["cost"] == 0
    yesterday = [r for r in rows if r["tenant"] == "acme" and r["day"] == today - dt.timedelta(days=1)]
    assert [(r["model"], r["answers"], r["cost"]) for r in yesterday] == [("cheap", 1, Decimal("0.2"))]

    globex_rows = usage_by_day(tenant_ids=[globex.pk])
    assert [(r["bot"], r["model"], r["cost"]) for r in globex_rows] == [("support", "dear", Decimal("2.5"))]

    totals = usage_totals(rows)
    stored = Message.objects.filter(role="assistant")
    assert totals["answers"] == stored.count() == 6
    assert totals["cost"] == sum(m.cost for m in stored) == Decimal("3.3")
    assert totals["tokens_in"] == 5000 and fake_openai.calls == 5
