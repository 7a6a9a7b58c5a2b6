"""Knowledge entries: static answers matched without a model call."""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
MATCH_THRESHOLD = 0.86


def normalize_question(text: str) -> str:
    """Case-, width- and punctuation-insensitive form of a question (used for matching and caching)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT.sub(" ", text).strip()


def match_knowledge(bot: Any, question: str) -> Any | None:
    """The enabled knowledge entry of ``bot`` that answers ``question``, or None.

    An entry matches when the normalized question equals or closely resembles its question, or
    equals one of its keywords.
    """
    wanted = normalize_question(question)
    if not wanted:
        return None
    best, best_score = None, 0.0
    for entry in bot.knowledge.filter(enabled=True).only("id", "question", "answer", "keywords"):
        candidates = [normalize_question(entry.question)]
        candidates += [normalize_question(k) for k in entry.keywords.split(",") if k.strip()]
        for candidate in candidates:
            if not candidate:
                continue
            score = 1.0 if candidate == wanted else difflib.SequenceMatcher(None, candidate, wanted).ratio()
            if score > best_score:
                best, best_score = entry, score
    return best if best_score >= MATCH_THRESHOLD else None
