"""The built-in model: works on a fresh install with no API key.

Knowledge entries are matched before any model is called (``apps.bots.knowledge``), so when a
question reaches this provider nothing matched: it says plainly, in the user's language, that it
has no answer to that yet (setup gives a bot on the built-in model a greeting and a few answers to
start with: ``apps.setup.services``).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.core.i18n import text_in

from ..types import Completion
from .base import TextStream

NOT_CONFIGURED = _(
    "I don't have an answer to that yet: I answer from the questions and answers prepared for me, and "
    "this one is not among them. An administrator can add answers, or connect an AI model, in the "
    "Parley admin."
)


def not_configured_text(language: str) -> str:
    return text_in(language, NOT_CONFIGURED)


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
