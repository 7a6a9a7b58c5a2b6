"""The provider contract and the pieces every HTTP provider shares (timeouts, TLS, error texts)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator
from typing import Any, Protocol

import httpx

from apps.core import netguard

from ..types import Completion, ProviderError

# A provider's stream yields text pieces and *returns* the Completion (text, token counts) when it
# ends, so streaming keeps the plain ``Iterator[str]`` shape and still reports usage.
TextStream = Generator[str, None, Completion]


class ChatProvider(Protocol):
    """A model API. ``messages`` are ``{"role": "system"|"user"|"assistant", "content": str}``, and
    in a tool-calling answer also an assistant turn with ``"tool_calls": [{"id", "name",
    "arguments"}]`` and ``{"role": "tool", "tool_call_id", "name", "content"}`` results.

    ``complete`` returns the whole answer; ``stream`` yields text pieces as they arrive (an empty
    piece when only a tool call advanced: the call is alive) and returns the ``Completion``. Both
    raise ``ProviderError`` (outcome timeout / error / rate_limited). ``tools`` (``[{"name",
    "description", "parameters"}]``) are offered to the model in its API's own form; the tools it
    asks for are ``Completion.tool_calls``. The router enforces the first-token deadline;
    ``timeout`` sets the HTTP request's own timeouts as a backstop so an abandoned call ends by
    itself. A provider object serves one call on a long-lived SDK client shared by the process;
    ``close`` abandons that call (closes its streamed response) and leaves the client and its
    other connections alone.
    """

    def complete(
        self,
        messages: list[dict],
        *,
        model: str,
        max_tokens: int,
        timeout: float,
        temperature: float | None = None,
        tools: list[dict] | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: list[dict],
        *,
        model: str,
        max_tokens: int,
        timeout: float,
        temperature: float | None = None,
        tools: list[dict] | None = None,
    ) -> TextStream: ...

    def close(self) -> None: ...


# Gaps between streamed pieces may be longer than the first-token timeout (a model "thinking"
# mid-answer); the router applies its own idle limit, this is only the socket-level backstop.
STREAM_READ_TIMEOUT = 60.0


netguard.tls_context()  # built at import (tens of ms), not inside the first model call's timeout

#: Idle connections to a model endpoint are kept this long for the next call (a TLS handshake saved).
KEEPALIVE_SECONDS = 30.0
#: SDK clients kept per process (one per provider kind + endpoint + key + API version).
MAX_SHARED_CLIENTS = 64


def request_timeout(timeout: float, *, streaming: bool) -> httpx.Timeout:
    """The HTTP timeouts of one call, derived from the model's ``timeout`` (passed per request, so
    calls with different timeouts share one client)."""
    read = max(timeout, STREAM_READ_TIMEOUT) if streaming else timeout
    return httpx.Timeout(connect=timeout, read=read, write=timeout, pool=timeout)


def http_client() -> httpx.Client:
    """A long-lived, thread-safe HTTP client with a connection pool (for one shared SDK client).

    No limit on connections at once: calls abandoned at their deadline may still hold one until
    their own timeout ends them, and they must never make a healthy call wait for the pool.
    """
    return netguard.guarded_client(
        verify=netguard.tls_context(),
        timeout=httpx.Timeout(STREAM_READ_TIMEOUT),  # every call passes its own (request_timeout)
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=KEEPALIVE_SECONDS),
        follow_redirects=False,
    )


class SharedClients:
    """One SDK client per key (provider kind, endpoint, key, API version) per process, so model calls
    reuse connections instead of opening one (and a TLS handshake) per answer.

    Keyed on the values, not on a ModelConfig's id: a model edited in the admin (a new key, a new
    endpoint) gets a new client on its next call, and the old one is dropped once it is the least
    recently used of ``MAX_SHARED_CLIENTS`` (calls still running on it finish normally). A forked
    child starts with none: sockets are never shared across processes.
    """

    def __init__(self, maxsize: int = MAX_SHARED_CLIENTS) -> None:
        self.maxsize = maxsize
        self._clients: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
        client = build()  # outside the lock: building a client takes a millisecond or two
        with self._lock:
            existing = self._clients.get(key)
            if existing is not None:
                return existing
            self._clients[key] = client
            while len(self._clients) > self.maxsize:
                self._clients.popitem(last=False)
        return client

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()

    def __len__(self) -> int:
        return len(self._clients)


shared_clients = SharedClients()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=shared_clients.clear)


class CallHandle:
    """The response of one streamed call on a shared client, closable from another thread: the
    router abandons a call at its deadline by closing this call's response, never the client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._response: Any = None
        self._closed = False

    def attach(self, response: Any) -> None:
        """Remember the call's open response; closes it at once if the call was already abandoned."""
        with self._lock:
            self._response = response
            closed = self._closed
        if closed:
            _close_quietly(response)
            raise ProviderError("the call was abandoned", outcome="timeout")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            response, self._response = self._response, None
        if response is not None:
            _close_quietly(response)


def _close_quietly(response: Any) -> None:
    with contextlib.suppress(Exception):
        response.close()


def redact(text: str, secret: str) -> str:
    """``text`` without ``secret`` (providers sometimes echo the key they rejected)."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


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
