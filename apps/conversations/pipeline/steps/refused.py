"""Refused: a message over a rate limit (marked when it was accepted) gets the notice, not an answer."""

from __future__ import annotations

from ...commands import text_for
from ...models import InboundMessage
from ..context import answer_language
from ..sending import reply_and_finish
from ..turn import CONTINUE, DONE, Outcome, Turn

S = InboundMessage.Status


def run(turn: Turn) -> Outcome:
    refused_by = turn.inbound.refused_by
    if not refused_by:
        return CONTINUE
    turn.storage.store_user_turn(turn, source="rate_limited")
    text = text_for(f"rate_limited_{refused_by}", turn.language)
    reply_and_finish(
        turn, text=text, source="system", status=S.RATE_LIMITED, language=answer_language(turn.conversation, text)
    )
    return DONE
