"""Which language a user writes in, and which one to answer in (docs/i18n.md).

``detect`` asks lingua (a statistical detector with models for 75 languages) for the language of
one message, choosing only among the languages the tenant enables (``Tenant.languages``): a
detector choosing among a few languages is faster and more often right than one choosing among
all. A message with no letters (digits, emoji, a URL) says nothing and keeps ``default``.

A conversation's language is its dominant one (``dominant_language``): each user turn counts by
how much it says, so an "ok" or a product name in Latin letters does not flip a Chinese
conversation to English, while a real message in another language moves it.

Every model call carries ``reply_language_instruction`` in its system prompt, whether or not the
user pinned a language with ``/lang``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

#: The languages Parley can detect and instruct a model to answer in (ISO 639-1), each with how a
#: model is told to answer in it. Tenants enable a subset (``Tenant.languages``).
INSTRUCTIONS = {
    "zh": "请始终使用简体中文回答。",
    "en": "Always answer in English.",
    "ja": "必ず日本語で回答してください。",
    "ko": "항상 한국어로 답변하세요.",
    "fr": "Réponds toujours en français.",
    "de": "Antworte immer auf Deutsch.",
    "es": "Responde siempre en español.",
    "ru": "Всегда отвечай на русском языке.",
    "pt": "Responda sempre em português.",
    "it": "Rispondi sempre in italiano.",
    "vi": "Luôn trả lời bằng tiếng Việt.",
    "th": "โปรดตอบเป็นภาษาไทยเสมอ",
    "id": "Selalu jawab dalam bahasa Indonesia.",
    "ar": "أجب دائمًا باللغة العربية.",
}
SUPPORTED = tuple(INSTRUCTIONS)
DEFAULT_LANGUAGES = ("zh", "en")

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
#: User turns looked at for a conversation's dominant language.
DOMINANT_WINDOW = 10


def parse_languages(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"zh, en"`` or ``["zh", "en"]`` → ``("zh", "en")``: known codes, in order, once each;
    Parley's default pair when nothing usable is left."""
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value or ())
    out: list[str] = []
    for item in items:
        code = str(item).strip().lower().split("-")[0].split("_")[0]
        if code in INSTRUCTIONS and code not in out:
            out.append(code)
    return tuple(out) or DEFAULT_LANGUAGES


@lru_cache(maxsize=64)
def _detector(languages: tuple[str, ...]):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    members = [Language.from_iso_code_639_1(IsoCode639_1.from_str(code)) for code in languages]
    return LanguageDetectorBuilder.from_languages(*members).build()


def detect(text: str, languages: Iterable[str] | str | None = None, default: str = "en") -> str:
    """The language of ``text`` among ``languages`` (ISO 639-1 codes; Parley's default pair when
    None), or ``default`` when the text has no letters or the detector cannot tell."""
    enabled = parse_languages(languages)
    if not _LETTER.search(text or ""):
        return default
    if len(enabled) == 1:
        return enabled[0]
    found = _detector(enabled).detect_language_of(text)
    if found is None:
        return default
    return found.iso_code_639_1.name.lower()


#: The old name, kept for callers outside the pipeline (rating buttons, feedback pages).
def detect_language(text: str, default: str = "en", languages: Iterable[str] | str | None = None) -> str:
    return detect(text, languages, default)


def weight(text: str) -> int:
    """How much a turn says: letters, a CJK character counting as three (about one short word)."""
    cjk = len(_CJK.findall(text or ""))
    return len(_LETTER.findall(text or "")) + 2 * cjk


def dominant_language(turns: Iterable[tuple[str, str]], default: str = "en") -> str:
    """The language carrying most of ``turns`` — ``(language, text)`` pairs, oldest first, e.g. a
    conversation's user turns — by ``weight``; on a tie the more recent one. ``default`` when no
    turn has a language."""
    totals: dict[str, int] = {}
    last_seen: dict[str, int] = {}
    for index, (language, text) in enumerate(turns):
        if not language:
            continue
        totals[language] = totals.get(language, 0) + max(weight(text), 1)
        last_seen[language] = index
    if not totals:
        return default
    return max(totals, key=lambda code: (totals[code], last_seen[code]))


def reply_language_instruction(language: str) -> str:
    """The system-prompt line telling a model which language to answer in (English for a code
    Parley has no instruction for)."""
    code = (language or "en").lower().split("-")[0]
    return INSTRUCTIONS.get(code, INSTRUCTIONS["en"])


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
