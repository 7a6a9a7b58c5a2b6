"""Knowledge: a context-free question that matches one of the bot's knowledge entries is answered
with the entry, no model asked."""

from __future__ import annotations

import time

from apps.bots.knowledge import match_knowledge
from apps.core import metrics
from apps.llm.types import Answer

from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    question = turn.question
    if turn.answer is not None or question is None or not question.strip():
        return CONTINUE
    started = time.monotonic()
    bot = turn.bot
    entry = match_knowledge(bot, question, stamp=turn.knowledge_stamp)
    metrics.record_cache_lookup(tenant=bot.tenant.slug, bot=bot.slug, kind="knowledge", hit=entry is not None)
    if entry is not None:
        turn.stream(entry.answer)
        latency_ms = int((time.monotonic() - started) * 1000)
        turn.answer = Answer(text=entry.answer, source="knowledge", cached=True, latency_ms=latency_ms)
    return CONTINUE
