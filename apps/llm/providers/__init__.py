"""Model providers by kind: ``openai`` (any OpenAI-compatible endpoint), ``anthropic``, ``builtin``."""

from __future__ import annotations

# Provider modules (and the SDKs' API resources) are imported eagerly, not on the first call, so a
# fresh worker's first model call does not spend its timeout importing.
from ..types import ProviderError
from .anthropic_messages import AnthropicProvider
from .base import ChatProvider
from .builtin import BuiltinProvider
from .openai_compatible import OpenAICompatibleProvider


def provider_for(
    *, kind: str, endpoint: str = "", api_key: str = "", api_version: str = "", language: str = "en"
) -> ChatProvider:
    """A fresh provider for one call. Raises ProviderError (not retryable) for an unknown kind."""
    if kind in ("openai", "generic"):
        return OpenAICompatibleProvider(endpoint=endpoint, api_key=api_key, api_version=api_version)
    if kind == "anthropic":
        return AnthropicProvider(endpoint=endpoint, api_key=api_key)
    if kind == "builtin":
        return BuiltinProvider(language)
    raise ProviderError(f"unknown provider '{kind}'", outcome="error", retryable=False)


__all__ = ["AnthropicProvider", "BuiltinProvider", "ChatProvider", "OpenAICompatibleProvider", "provider_for"]
