"""Session: the conversation the message belongs to, and the language to answer in (as far as it
is known before the context is read: the merge step refines it with the turns it reads)."""

from __future__ import annotations

from apps.core.logging import bind

from ..context import session_languages
from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    conv = turn.storage.conversation(turn)
    turn.conversation = conv
    bind(conversation=conv.pk)
    turn.text_language, turn.language = session_languages(conv, turn.text)
    return CONTINUE
