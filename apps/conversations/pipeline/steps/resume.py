"""Resume: a message re-driven after a crash whose answer was stored already gets that answer
sent (unless it was delivered before) instead of a new one."""

from __future__ import annotations

from ...models import InboundMessage
from ..sending import deliver
from ..turn import CONTINUE, DONE, Outcome, Turn

S = InboundMessage.Status


def run(turn: Turn) -> Outcome:
    inbound = turn.inbound
    if inbound.reply_id is None:
        return CONTINUE
    deliver(turn, inbound.reply, status=S.RATE_LIMITED if inbound.refused_by else S.ANSWERED)
    return DONE
