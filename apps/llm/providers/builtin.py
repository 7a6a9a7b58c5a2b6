"""The built-in model: works on a fresh install with no API key.

Knowledge entries are matched before any model is called (``apps.bots.knowledge``), so when a
question reaches this provider nothing matched: it says plainly that no AI model is configured.
"""

from __future__ import annotations

from ..types import Completion
from .base import TextStream

NOT_CONFIGURED = {
    "en": "No AI model is configured for this assistant yet, and I have no prepared answer to that question. "
    "An administrator can add a model in the Parley admin.",
    "zh": "此助手尚未配置 AI 模型，我也没有这个问题的预设答案。管理员可以在 Parley 后台添加模型。",
}


def not_configured_text(language: str) -> str:
    return NOT_CONFIGURED["zh" if language.startswith("zh") else "en"]


class BuiltinProvider:
    def __init__(self, language: str = "en") -> None:
        self.language = language

    def complete(
        self,
        messages: list[dict],
        *,
        model: str = "",
        max_tokens: int = 0,
        timeout: float = 0,
        temperature: float | None = None,
        tools: list[dict] | None = None,
    ) -> Completion:
        return Completion(text=not_configured_text(self.language), model="builtin")

    def stream(
        self,
        messages: list[dict],
        *,
        model: str = "",
        max_tokens: int = 0,
        timeout: float = 0,
        temperature: float | None = None,
        tools: list[dict] | None = None,
    ) -> TextStream:
        completion = self.complete(messages)
        yield completion.text
        return completion

    def close(self) -> None:
        pass
