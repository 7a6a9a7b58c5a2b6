"""Cached answer: a context-free question asked of the bot before is answered from its answer
cache (when the bot caches answers), no model asked.

The key holds the tenant, the bot, the normalized question, the language and the versions of the
bot and of the models that would answer, so an answer never crosses bots or tenants and an edit
of the bot or a model makes old answers unreachable. The key is kept on the turn: the generate
step shares one model call among identical questions in flight under it.
"""

from __future__ import annotations

import time

from apps.core import metrics
from apps.llm.types import Answer

from ...answer_cache import from_shared, get_answer, question_key
from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    question = turn.question
    if turn.answer is not None or question is None or not question.strip():
        return CONTINUE
    if turn.tools:  # an answer that may act (open a ticket) is never a stored one, nor shared
        return CONTINUE
    bot = turn.bot
    stamp = bot.updated_at.timestamp() if bot.updated_at else 0
    versions = f"bot@{stamp:.3f}|" + "|".join(spec.version for spec in turn.chain)
    turn.cache_key = question_key(
        tenant_id=bot.tenant_id, bot_id=bot.pk, question=question, language=turn.language[:2], versions=versions
    )
    if turn.cache_key and bot.cache_answers:
        turn.answer = lookup(turn)
    return CONTINUE


def lookup(turn: Turn) -> Answer | None:
    """The cached answer for ``turn.cache_key`` (streamed as one piece), or None."""
    started = time.monotonic()
    bot = turn.bot
    payload = get_answer(turn.cache_key)
    metrics.record_cache_lookup(tenant=bot.tenant.slug, bot=bot.slug, kind="answer", hit=payload is not None)
    if payload is None:
        return None
    turn.stream(payload["text"])
    return from_shared(payload, latency_ms=int((time.monotonic() - started) * 1000))
