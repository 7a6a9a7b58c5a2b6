"""Session: the conversation the message belongs to, and the language to answer in."""

from __future__ import annotations

from apps.core.logging import bind

from ..context import turn_languages
from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    conv = turn.storage.conversation(turn)
    turn.conversation = conv
    bind(conversation=conv.pk)
    turn.text_language, turn.language = turn_languages(conv, turn.text)
    return CONTINUE
