"""Handoff gate: while a person holds the conversation the bot stays silent (the message is stored
for them), and ``/human`` or a phrase the bot's admin configured asks for one. Human handoff lives
in ``apps.inbox``, a layer above; it plugs in through ``conversations.handoff``."""

from __future__ import annotations

from ...handoff import handoff_port
from ..turn import CONTINUE, DONE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    return DONE if handoff_port().gate(turn) else CONTINUE
