"""Knowledge entries: static answers matched without a model call."""

from __future__ import annotations

import difflib
import re
import threading
import unicodedata
from typing import Any

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
MATCH_THRESHOLD = 0.86
#: Bots whose normalized entries are kept per process (see ``match_knowledge``'s ``stamp``).
CACHED_BOTS = 512

_cache: dict[int, tuple[str, list[tuple[Any, list[str]]]]] = {}
_cache_lock = threading.Lock()


def normalize_question(text: str) -> str:
    """Case-, width- and punctuation-insensitive form of a question (used for matching and caching)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT.sub(" ", text).strip()


def _load(bot: Any) -> list[tuple[Any, list[str]]]:
    """The bot's enabled entries, each with its normalized question and keywords."""
    entries = []
    # bot_id too: the related manager reads it on every entry (a query each were it deferred).
    for entry in bot.knowledge.filter(enabled=True).only("id", "bot_id", "question", "answer", "keywords"):
        candidates = [normalize_question(entry.question)]
        candidates += [normalize_question(k) for k in entry.keywords.split(",") if k.strip()]
        entries.append((entry, [c for c in candidates if c]))
    return entries


def _entries(bot: Any, stamp: str | None) -> list[tuple[Any, list[str]]]:
    if stamp is None:
        return _load(bot)
    with _cache_lock:
        hit = _cache.get(bot.pk)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    entries = _load(bot)
    with _cache_lock:
        if len(_cache) >= CACHED_BOTS:
            _cache.clear()
        _cache[bot.pk] = (stamp, entries)
    return entries


def match_knowledge(bot: Any, question: str, *, stamp: str | None = None) -> Any | None:
    """The enabled knowledge entry of ``bot`` that answers ``question``, or None.

    An entry matches when the normalized question equals or closely resembles its question, or
    equals one of its keywords.

    ``stamp``: a digest of the bot's entries as stored now, read by the caller in a statement it
    makes anyway (the pipeline's claim). The entries, normalized, are then kept in this process and
    read again only when the digest changes — an edit in the admin is used by the next message.
    Without it they are read on every call.
    """
    wanted = normalize_question(question)
    if not wanted:
        return None
    best, best_score = None, 0.0
    matcher = difflib.SequenceMatcher(None, "", wanted)  # caches what it learns about ``wanted``
    for entry, candidates in _entries(bot, stamp):
        for candidate in candidates:
            if candidate == wanted:
                return entry  # the first exact match wins, as a full score can only be exact
            floor = max(best_score, MATCH_THRESHOLD - 1e-9)
            matcher.set_seq1(candidate)
            # The quick upper bounds skip the full comparison of entries that cannot win.
            if matcher.real_quick_ratio() <= floor or matcher.quick_ratio() <= floor:
                continue
            score = matcher.ratio()
            if score > best_score:
                best, best_score = entry, score
    return best if best_score >= MATCH_THRESHOLD else None
