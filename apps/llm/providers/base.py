from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..types import Completion


class ChatProvider(Protocol):
    """A model API. ``messages`` are ``{"role": "system"|"user"|"assistant", "content": str}``.

    ``complete`` returns the whole answer; ``stream`` yields text pieces as they arrive. Both raise
    ``ProviderError`` (outcome timeout / error / rate_limited) and never hang past ``timeout``
    waiting for the first token.
    """

    def complete(self, messages: list[dict], *, model: str, max_tokens: int, timeout: float) -> Completion: ...

    def stream(self, messages: list[dict], *, model: str, max_tokens: int, timeout: float) -> Iterator[str]: ...
