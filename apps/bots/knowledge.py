"""Knowledge entries: static answers matched without a model call.

An entry answers a message when, after normalisation (Unicode NFKC — full-width letters, digits and
punctuation become half-width —, case-folded, punctuation of any script removed):

1. the message equals its question, or one of its keywords;
2. the message closely resembles its question (``MATCH_THRESHOLD``, difflib's ratio);
3. one of its keywords occurs in the message: Chinese (and Japanese, Korean) keywords anywhere, as
   written without spaces ("几点开门" in "你们几点开门"); Latin keywords as whole words ("refund"
   in "how do I get a refund", not in "refunded").

When several entries match, the most specific wins: an exact match before a close one before a
keyword, and among keywords the longest one found.
"""

from __future__ import annotations

import difflib
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# A space next to a CJK character carries no meaning ("几点 开门" is "几点开门").
_CJK_SPACE = re.compile(
    r"(?<=[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]) "
    r"| (?=[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])"
)
_WORDISH = re.compile(r"[^\W_]", re.ASCII)  # an ASCII letter or digit (CJK characters are not)
MATCH_THRESHOLD = 0.86
#: Bots whose normalized entries are kept per process (see ``match_knowledge``'s ``stamp``).
CACHED_BOTS = 512

_cache: dict[int, tuple[str, list[_Entry]]] = {}
_cache_lock = threading.Lock()


def normalize_question(text: str) -> str:
    """Case-, width- and punctuation-insensitive form of a question (used for matching and caching)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _CJK_SPACE.sub("", _PUNCT.sub(" ", text).strip())


@dataclass
class _Entry:
    entry: Any
    question: str
    keywords: list[str]


def _load(bot: Any) -> list[_Entry]:
    """The bot's enabled entries, each with its normalized question and keywords."""
    entries = []
    # bot_id too: the related manager reads it on every entry (a query each were it deferred).
    for entry in bot.knowledge.filter(enabled=True).only("id", "bot_id", "question", "answer", "keywords"):
        keywords = [normalize_question(k) for k in re.split(r"[,，、;；\n]", entry.keywords) if k.strip()]
        entries.append(_Entry(entry, normalize_question(entry.question), [k for k in keywords if k]))
    return entries


def _entries(bot: Any, stamp: str | None) -> list[_Entry]:
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


def keyword_in(keyword: str, message: str) -> bool:
    """Whether a normalized ``keyword`` occurs in a normalized ``message`` (see the module doc)."""
    if not keyword:
        return False
    if _CJK.search(keyword):
        return keyword in message
    start = message.find(keyword)
    while start >= 0:  # a whole word: no letter or digit of another word right before or after it
        end = start + len(keyword)
        before = message[start - 1] if start else " "
        after = message[end] if end < len(message) else " "
        if not _WORDISH.match(before) and not _WORDISH.match(after):
            return True
        start = message.find(keyword, start + 1)
    return False


def match_knowledge(bot: Any, question: str, *, stamp: str | None = None) -> Any | None:
    """The enabled knowledge entry of ``bot`` that answers ``question``, or None (module doc).

    ``stamp``: a digest of the bot's entries as stored now, read by the caller in a statement it
    makes anyway (the pipeline's claim). The entries, normalized, are then kept in this process and
    read again only when the digest changes — an edit in the admin is used by the next message.
    Without it they are read on every call.
    """
    wanted = normalize_question(question)
    if not wanted:
        return None
    entries = _entries(bot, stamp)
    for item in entries:  # 1. exact
        if item.question == wanted or wanted in item.keywords:
            return item.entry
    best, best_score = None, 0.0  # 2. close to the question
    matcher = difflib.SequenceMatcher(None, "", wanted)  # caches what it learns about ``wanted``
    for item in entries:
        if not item.question:
            continue
        floor = max(best_score, MATCH_THRESHOLD - 1e-9)
        matcher.set_seq1(item.question)
        # The quick upper bounds skip the full comparison of entries that cannot win.
        if matcher.real_quick_ratio() <= floor or matcher.quick_ratio() <= floor:
            continue
        score = matcher.ratio()
        if score > best_score:
            best, best_score = item.entry, score
    if best is not None and best_score >= MATCH_THRESHOLD:
        return best
    found, found_len = None, 0  # 3. the longest keyword in the message
    for item in entries:
        for keyword in item.keywords:
            if len(keyword) > found_len and keyword_in(keyword, wanted):
                found, found_len = item.entry, len(keyword)
    return found
