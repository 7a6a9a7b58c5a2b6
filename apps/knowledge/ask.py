""" "Ask the knowledge base": what retrieval finds for a question and the prompt that would be sent —
computed exactly as for a real message, sent to no one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import KnowledgeBase
from .prompt import sources_message
from .retrieval import Retrieval, search
from .text import is_chinese


@dataclass
class Preview:
    retrieval: Retrieval
    language: str
    prompt: list[dict[str, str]] = field(default_factory=list)
    threshold: float = 0.0


def preview(kb: KnowledgeBase, question: str, *, bot: Any = None) -> Preview:
    language = "zh" if is_chinese(question) else "en"
    threshold = bot.retrieval_threshold if bot is not None else 0.0
    result = search([kb], question, threshold=threshold)
    prompt: list[dict[str, str]] = []
    if bot is not None and (bot.system_prompt or "").strip():
        prompt.append({"role": "system", "content": bot.system_prompt.strip()})
    if result.used:
        prompt.append({"role": "system", "content": sources_message(result.used, language)})
    prompt.append({"role": "user", "content": question})
    return Preview(retrieval=result, language=language, prompt=prompt, threshold=threshold)
