"""Workflows: a message that starts a workflow, or answers a workflow's confirmation prompt, is
handled by ``..workflow_step`` (before the commands: "/ticket …" must win over the unknown-command
hint, and "yes" to a prompt is not a question for the model). Refused messages only get the notice."""

from __future__ import annotations

from ..turn import CONTINUE, DONE, Outcome, Turn
from ..workflow_step import run_workflows


def run(turn: Turn) -> Outcome:
    if turn.inbound.refused_by:
        return CONTINUE
    return DONE if run_workflows(turn) else CONTINUE
