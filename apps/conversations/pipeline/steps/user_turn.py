"""User turn: what the user wrote is stored in the conversation (once), in the answer language."""

from __future__ import annotations

from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    turn.storage.store_user_turn(turn)
    return CONTINUE
