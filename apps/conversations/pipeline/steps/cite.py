"""Cite: an answer made from knowledge-base passages lists the sources it cites ([1], [2] …) under
it in Markdown — a link for a web page, the document and section otherwise — which each platform
renders in its own dialect; the passages it was given, with their scores, are kept on the reply
for review."""

from __future__ import annotations

from apps.knowledge.prompt import with_sources

from ..turn import CONTINUE, Outcome, Turn


def run(turn: Turn) -> Outcome:
    result, answer = turn.retrieval, turn.answer
    if result is None or answer is None or not result.used:
        return CONTINUE
    turn.knowledge_sources = [hit.as_record(n) for n, hit in enumerate(result.used, start=1)]
    if not answer.failed:
        answer.text = with_sources(answer.text, result.used, turn.language)
    return CONTINUE
