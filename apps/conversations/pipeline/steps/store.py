"""Store: the answer is stored as the message's reply — only if the sender has not written again
meanwhile (else it is kept for review, out of the context, and the message is finished as
interrupted) and only while this worker still owns the message."""

from __future__ import annotations

from ..turn import CONTINUE, DONE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    answer = turn.answer
    reply = turn.storage.store_reply(
        turn,
        text=answer.text,
        check_newer=True,
        language=turn.language,
        model_config=answer.model_config,
        model_name=answer.model_name,
        provider=answer.provider,
        latency_ms=answer.latency_ms,
        tokens_in=answer.tokens_in,
        tokens_out=answer.tokens_out,
        cost=answer.cost,
        attempts=[a.as_dict() for a in answer.attempts],
        fallback_used=answer.fallback_used,
        cached=answer.cached,
        source=answer.source,
        failed=answer.failed,
        knowledge_sources=turn.knowledge_sources,
        tool_calls=turn.tool_log,
    )
    if reply is None or reply.interrupted:
        turn.drop_stream()
        return DONE
    turn.reply = reply
    return CONTINUE
