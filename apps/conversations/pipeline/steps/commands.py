"""Commands: ``/help``, ``/reset``, ``/stop``, ``/lang`` are carried out and answered; unknown
ones get a hint. No model is asked."""

from __future__ import annotations

from ...models import InboundMessage
from ..commands import run_command
from ..context import answer_language
from ..sending import reply_and_finish
from ..turn import CONTINUE, DONE, Outcome, Turn

S = InboundMessage.Status


def run(turn: Turn) -> Outcome:
    if turn.command is None:
        return CONTINUE
    conv = turn.conversation
    turn.storage.store_user_turn(turn, source="command")
    text = run_command(turn.storage, turn.command, turn.inbound, conv)
    reply_and_finish(turn, text=text, source="command", status=S.ANSWERED, language=answer_language(conv, text))
    return DONE
