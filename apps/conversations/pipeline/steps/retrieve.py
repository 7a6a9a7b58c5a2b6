"""Retrieve: the bot's knowledge bases are searched for the user's message (docs/knowledge.md).

The best passages above the bot's threshold, within ``KNOWLEDGE_PROMPT_TOKENS``, go into what the
model is sent as numbered sources, after the bot's own system prompt. When nothing reaches the
threshold the bot says it does not know, in the user's language — or, when its
``knowledge_fallback`` is "general", the model answers without sources. A bot with no model (the
built-in one) answers with the best passage itself, cited: documents answer offline too.

Answers given sources are not cached (the documents may change under them); the ``cite`` step
lists the sources an answer cites and keeps them on the reply.
"""

from __future__ import annotations

import time

from apps.core.pii import mask_text
from apps.knowledge.prompt import extractive_answer, no_answer_text, sources_message
from apps.knowledge.retrieval import knowledge_bases_for, search
from apps.llm.types import Answer

from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    if turn.answer is not None:
        return CONTINUE
    bot = turn.bot
    kbs = knowledge_bases_for(bot)
    if not kbs:
        return CONTINUE
    started = time.monotonic()
    question = turn.text
    if bot.pii_policy == bot.PiiPolicy.MASK:
        question = mask_text(question)  # an embedding model is a model too
    result = turn.retrieval = search(kbs, question, threshold=bot.retrieval_threshold)
    if not result.used:
        if bot.knowledge_fallback == bot.KnowledgeFallback.UNKNOWN:
            text = no_answer_text(turn.language)
            turn.stream(text)
            turn.answer = Answer(text=text, source="knowledge", latency_ms=_ms(started))
        return CONTINUE
    sources = {"role": "system", "content": sources_message(result.used, turn.language)}
    at = 1 if turn.messages and turn.messages[0]["role"] == "system" else 0
    turn.messages = [*turn.messages[:at], sources, *turn.messages[at:]]
    turn.question = None  # not answered from (nor put in) the answer cache
    if turn.chain and all(spec.provider == "builtin" for spec in turn.chain):
        text = extractive_answer(result.used, turn.language)
        turn.stream(text)
        turn.answer = Answer(text=text, source="knowledge", latency_ms=_ms(started))
    return CONTINUE


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
