"""Language detection for Chinese and English users: answer in the language the user wrote in."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str, default: str = "en") -> str:
    """'zh' when Chinese characters carry the message, 'en' when Latin letters do, else ``default``.

    One Chinese character carries about as much as a short English word, so CJK counts triple.
    """
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0 and latin == 0:
        return default
    return "zh" if cjk * 3 >= latin else "en"


def page_language(request, conversation_language: str = "") -> str:
    """'zh' or 'en' for a page Parley renders: the conversation's language when known, else the
    browser's Accept-Language (English when it names neither)."""
    from django.utils.translation.trans_real import parse_accept_lang_header

    lang = (conversation_language or "").lower()
    if lang.startswith(("zh", "en")):
        return lang[:2]
    for code, _q in parse_accept_lang_header(request.headers.get("Accept-Language", "")[:255]):
        code = code.lower()
        if code.startswith(("zh", "en")):
            return code[:2]
    return "en"
