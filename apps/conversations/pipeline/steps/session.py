"""Session: the conversation the message belongs to, and the language to answer in."""

from __future__ import annotations

from apps.core.logging import bind

from ..context import answer_language
from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    conv = turn.storage.conversation(turn)
    turn.conversation = conv
    bind(conversation=conv.pk)
    turn.language = answer_language(conv, turn.text)
    return CONTINUE
