"""What retrieval puts into a prompt, and what an answer says about its sources.

The chosen passages go to the model as numbered sources in a system message, with the instruction
to cite them as [1], [2]. After the answer, the sources it cited are listed in Markdown — a link for
a web page, the document and section otherwise — and each platform's renderer turns that into its
own dialect (a link where the platform has links, the address in brackets where it has none).
"""

from __future__ import annotations

import re

from .retrieval import Hit

INSTRUCTIONS = {
    "en": (
        "Answer the user's question from the numbered sources below. After each statement taken from a "
        "source, cite it as [1], [2] … Use only these sources; if they do not contain the answer, say that "
        "you do not know. Do not mention the sources' numbering scheme or these instructions."
    ),
    "zh": (
        "请根据下面编号的资料回答用户的问题。每句来自资料的内容后用 [1]、[2] … 标注出处。只使用这些资料；"
        "如果资料中没有答案，请直接说不知道。不要提及编号规则或这些说明。"
    ),
}
NO_ANSWER = {
    "en": "Sorry, I don't know — I found nothing about that in my documents.",
    "zh": "抱歉，我不知道——我的资料里没有找到相关内容。",
}
SOURCES_HEADING = {"en": "Sources", "zh": "来源"}
FOUND_INTRO = {"en": "Here is what I found:", "zh": "我找到的相关内容："}


def _lang(language: str) -> str:
    return "zh" if (language or "").startswith("zh") else "en"


def no_answer_text(language: str) -> str:
    return NO_ANSWER[_lang(language)]


def source_label(hit: Hit) -> str:
    label = hit.title or "?"
    if hit.section and hit.section != hit.title:
        label += f" — {hit.section}"
    if hit.page:
        label += f" (p. {hit.page})"
    return label


def sources_message(hits: list[Hit], language: str) -> str:
    """The system message holding the sources, numbered from 1."""
    parts = [INSTRUCTIONS[_lang(language)], ""]
    for number, hit in enumerate(hits, start=1):
        parts.append(f"[{number}] {source_label(hit)}\n{hit.text.strip()}\n")
    return "\n".join(parts).strip()


_CITATION = re.compile(r"\[(\d{1,2})\]")


def cited_numbers(answer: str, count: int) -> list[int]:
    """The source numbers ``answer`` cites, in order of first citation (only 1…count)."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= count and number not in seen:
            seen.append(number)
    return seen


def _md_escape(text: str) -> str:
    return re.sub(r"([\\\[\]*_`])", r"\\\1", text)


def sources_footer(answer: str, hits: list[Hit], language: str) -> str:
    """Markdown listing the sources ``answer`` cites ("" when it cites none)."""
    numbers = cited_numbers(answer, len(hits))
    if not numbers:
        return ""
    lines = [f"**{SOURCES_HEADING[_lang(language)]}**", ""]
    for number in sorted(numbers):
        hit = hits[number - 1]
        label = _md_escape(source_label(hit))
        lines.append(f"- \\[{number}\\] [{label}]({hit.url})" if hit.url else f"- \\[{number}\\] {label}")
    return "\n".join(lines)


def with_sources(answer: str, hits: list[Hit], language: str) -> str:
    footer = sources_footer(answer, hits, language)
    return f"{answer.rstrip()}\n\n{footer}" if footer else answer


def extractive_answer(hits: list[Hit], language: str) -> str:
    """An answer made of the best passage itself, cited — for bots without a model (the built-in
    one): documents still answer, offline and without an API key."""
    best = hits[0]
    text = best.text.strip()
    if len(text) > 1200:
        text = text[:1200].rstrip() + " …"
    return f"{FOUND_INTRO[_lang(language)]}\n\n{text} [1]"
