"""The provider contract and the pieces every HTTP provider shares (timeouts, TLS, error texts)."""

from __future__ import annotations

import ssl
from collections.abc import Generator
from functools import lru_cache
from typing import Protocol

import httpx

from ..types import Completion, ProviderError

# A provider's stream yields text pieces and *returns* the Completion (text, token counts) when it
# ends, so streaming keeps the plain ``Iterator[str]`` shape and still reports usage.
TextStream = Generator[str, None, Completion]


class ChatProvider(Protocol):
    """A model API. ``messages`` are ``{"role": "system"|"user"|"assistant", "content": str}``.

    ``complete`` returns the whole answer; ``stream`` yields non-empty text pieces as they arrive
    and returns the ``Completion``. Both raise ``ProviderError`` (outcome timeout / error /
    rate_limited). The router enforces the first-token deadline; ``timeout`` sets the HTTP client's
    own timeouts as a backstop so an abandoned call ends by itself. ``close`` releases connections.
    """

    def complete(
        self, messages: list[dict], *, model: str, max_tokens: int, timeout: float, temperature: float | None = None
    ) -> Completion: ...

    def stream(
        self, messages: list[dict], *, model: str, max_tokens: int, timeout: float, temperature: float | None = None
    ) -> TextStream: ...

    def close(self) -> None: ...


# Gaps between streamed pieces may be longer than the first-token timeout (a model "thinking"
# mid-answer); the router applies its own idle limit, this is only the socket-level backstop.
STREAM_READ_TIMEOUT = 60.0


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; every per-call HTTP client shares one context.
    return httpx.create_ssl_context()


_tls_context()  # built at import (tens of ms), not inside the first model call's timeout


def http_client(timeout: float, *, streaming: bool) -> httpx.Client:
    """A fresh HTTP client for one call (closed afterwards), with timeouts derived from ``timeout``."""
    read = max(timeout, STREAM_READ_TIMEOUT) if streaming else timeout
    return httpx.Client(
        verify=_tls_context(),
        timeout=httpx.Timeout(connect=timeout, read=read, write=timeout, pool=timeout),
        follow_redirects=False,
    )


def redact(text: str, secret: str) -> str:
    """``text`` without ``secret`` (providers sometimes echo the key they rejected)."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def estimate_tokens(text: str) -> int:
    """A rough token count for providers that report none: CJK characters count one each, other
    text about four characters per token."""
    cjk = sum(
        1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff"
    )
    rest = len(text) - cjk
    return cjk + (rest + 3) // 4 if text else 0


def status_error(status: int, message: str) -> ProviderError:
    """A ProviderError for an HTTP error answer: 429 is rate_limited, 5xx retryable, other 4xx not."""
    if status == 429:
        return ProviderError(f"rate limited (429): {message}", outcome="rate_limited", status=status)
    hint = {
        401: "the provider rejected the API key",
        403: "the API key is not allowed to use this model",
        404: "not found — check the endpoint URL and the model name",
    }.get(status, "")
    text = f"HTTP {status}" + (f" ({hint})" if hint else "") + (f": {message}" if message else "")
    return ProviderError(text, outcome="error", retryable=status >= 500 or status == 408, status=status)
