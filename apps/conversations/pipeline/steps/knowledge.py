"""Knowledge: a message that matches one of the bot's knowledge entries (Q&A) is answered with the
entry, no model asked — on any turn of the conversation: a first question (with the messages
merged into it), or the newest message later on."""

from __future__ import annotations

import time

from apps.bots.knowledge import match_knowledge
from apps.core import metrics
from apps.llm.types import Answer

from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    question = turn.question if turn.question is not None else turn.text
    if turn.answer is not None or not question or not question.strip():
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
