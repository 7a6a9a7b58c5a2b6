"""Lexical tokens for BM25, in Chinese and English (the token estimate for budgets is
``apps.llm.tokens``'s, re-exported here).

Chinese has no spaces between words, so it is segmented with jieba's search mode (a long word also
yields its parts: "营业时间" → 营业, 时间, 营业时间), which lets a question's words meet a passage's
whatever the granularity either was written in. Latin text is NFKC-normalised (full-width letters
and digits become ASCII), case-folded and split on non-word characters. A short list of function
words is dropped in both languages.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

from apps.llm.tokens import estimate_tokens

_WORD = re.compile(r"\w", re.UNICODE)
_HAS_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

STOPWORDS = frozenset(
    """
    a about am an and are as at be been being by can could did do does for from had has have how i in is it its
    me my of on or our please
    should so that the their them there these this to was we what when where which who why will with would
    you your yours 's
    的 了 吗 呢 吧 啊 呀 是 在 和 与 及 或 我 你 您 他 她 它 我们 你们 请问 请 一下 什么 怎么 怎样 如何 哪 哪里 哪些
    吗 么 有 没有 都 也 就 还 要 会 能 可以 这 那 这个 那个 个 着 过 被 把 对 为 从 到 给 上 下 中
    """.split()  # noqa: SIM905 - a word list reads better as words
)

_jieba_lock = threading.Lock()
_jieba = None


def _segmenter():
    """jieba's default tokenizer, its dictionary loaded once per process (about a second)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def normalize(text: str) -> str:
    """NFKC (full-width → half-width) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def tokenize(text: str) -> list[str]:
    """The lexical tokens of ``text``, in order, function words left out."""
    text = normalize(text)
    words = _segmenter().cut_for_search(text) if _HAS_CJK.search(text) else re.split(r"[^\w]+", text)
    out = []
    for word in words:
        word = word.strip()
        if not word or word in STOPWORDS or not _WORD.search(word) or word == "_":
            continue
        out.append(word)
    return out


def is_chinese(text: str) -> bool:
    return bool(_HAS_CJK.search(text))


__all__ = ["estimate_tokens", "is_chinese", "tokenize"]
