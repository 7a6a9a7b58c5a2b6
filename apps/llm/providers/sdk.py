"""The skeleton every SDK-backed provider shares: one shared client per endpoint and key, one call
per provider object, the ``complete`` and ``stream`` bodies, token estimates where a provider
reports no usage, and errors as ``ProviderError`` with the key redacted.

A provider says only what differs: how to build its SDK client (``build_client``), the request
parameters (``params``), how to call (``create``), how to read a whole answer (``read_answer``)
and a streamed event (``read_event``), and how its SDK's exceptions map to ``ProviderError``
(``error``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..tokens import estimate_message_tokens, estimate_tokens
from ..types import Completion, ProviderError, ToolCall
from .base import CallHandle, TextStream, http_client, redact, request_timeout, shared_clients


@dataclass
class Answer:
    """What a provider read from a whole answer (``read_answer``); token counts None when unreported."""

    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class ToolDelta:
    """A piece of a streamed tool call: which call (its position in the answer), and its id, name
    and a piece of its arguments' JSON text as far as this event carries them."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Event:
    """What a provider read from one streamed event (``read_event``): a text piece, pieces of
    tool calls, usage figures and the model's name, each when the event carries it."""

    text: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str = ""
    tool_deltas: list[ToolDelta] = field(default_factory=list)


def joined_tool_calls(deltas: list[ToolDelta]) -> list[ToolCall]:
    """The tool calls a stream's pieces add up to, in the order the model made them."""
    calls: dict[int, ToolCall] = {}
    for d in deltas:
        call = calls.setdefault(d.index, ToolCall(id="", name=""))
        call.id = call.id or d.id
        call.name = call.name or d.name
        call.arguments += d.arguments
    return [calls[i] for i in sorted(calls) if calls[i].name]


class SDKProvider:
    """One call to a model API through its official SDK (see the module docstring)."""

    #: The provider kind: part of the shared client's key.
    kind: ClassVar[str] = ""

    def __init__(self, *, endpoint: str, api_key: str, variant: str = "") -> None:
        self.endpoint = endpoint
        self.api_key = api_key
        self.variant = variant  # anything else that makes a different client (Azure's API version)
        self._call = CallHandle()

    # --- what a provider says -----------------------------------------------------------------

    def build_client(self, http: Any) -> Any:
        """A new SDK client on ``http`` (the process's pooled HTTP client), without retries."""
        raise NotImplementedError

    def params(
        self, messages: list[dict], model: str, max_tokens: int, temperature: float | None, tools: list[dict] | None
    ) -> dict:
        """The request: ``messages`` (tool turns included) and ``tools`` in the API's own form."""
        raise NotImplementedError

    def create(self, client: Any, params: dict, *, stream: bool, timeout: Any) -> Any:
        """Make the call: the answer, or (``stream``) an iterable of events that can be closed."""
        raise NotImplementedError

    def read_answer(self, response: Any) -> Answer:
        """Raises ``ProviderError`` (or a parsing error) for an answer of the wrong shape."""
        raise NotImplementedError

    def read_event(self, event: Any) -> Event | None:
        """None for events that carry nothing Parley uses. May raise ``ProviderError`` (an error
        event mid-stream)."""
        raise NotImplementedError

    def error(self, exc: Exception) -> ProviderError:
        """``exc`` as a ``ProviderError`` (the key is redacted afterwards)."""
        raise NotImplementedError

    # --- the shared skeleton ------------------------------------------------------------------

    def client(self) -> Any:
        key = (self.kind, self.endpoint, self.api_key, self.variant)
        return shared_clients.get(key, lambda: self.build_client(http_client()))

    def close(self) -> None:
        """Abandon this call (its streamed response is closed); the shared client stays open."""
        self._call.close()

    def complete(
        self,
        messages: list[dict],
        *,
        model: str,
        max_tokens: int,
        timeout: float,
        temperature: float | None = None,
        tools: list[dict] | None = None,
    ) -> Completion:
        started = time.perf_counter()
        try:
            params = self.params(messages, model, max_tokens, temperature, tools)
            answer = self.read_answer(
                self.create(self.client(), params, stream=False, timeout=request_timeout(timeout, streaming=False))
            )
            return Completion(
                text=answer.text,
                tokens_in=answer.tokens_in or estimate_message_tokens(messages),
                tokens_out=answer.tokens_out or estimate_tokens(answer.text),
                latency_ms=int((time.perf_counter() - started) * 1000),
                model=answer.model or model,
                tool_calls=answer.tool_calls,
            )
        except Exception as exc:
            raise self._redacted(exc) from exc

    def stream(
        self,
        messages: list[dict],
        *,
        model: str,
        max_tokens: int,
        timeout: float,
        temperature: float | None = None,
        tools: list[dict] | None = None,
    ) -> TextStream:
        started = time.perf_counter()
        first_ms = 0
        pieces: list[str] = []
        deltas: list[ToolDelta] = []
        tokens_in = tokens_out = 0
        answered_model = model
        try:
            params = self.params(messages, model, max_tokens, temperature, tools)
            events = self.create(self.client(), params, stream=True, timeout=request_timeout(timeout, streaming=True))
            self._call.attach(events)
            with events:
                for event in self._read(events):
                    tokens_in = event.tokens_in or tokens_in
                    tokens_out = event.tokens_out or tokens_out
                    answered_model = event.model or answered_model
                    if event.text:
                        if not pieces:
                            first_ms = int((time.perf_counter() - started) * 1000)
                        pieces.append(event.text)
                        yield event.text
                    elif event.tool_deltas:
                        if not first_ms:
                            first_ms = int((time.perf_counter() - started) * 1000)
                        deltas.extend(event.tool_deltas)
                        yield ""  # no text, but the answer is coming: the router's deadline moves on
        except GeneratorExit:
            raise
        except Exception as exc:
            raise self._redacted(exc) from exc
        text = "".join(pieces)
        return Completion(
            text=text,
            tokens_in=tokens_in or estimate_message_tokens(messages),
            tokens_out=tokens_out or estimate_tokens(text),
            latency_ms=first_ms,
            model=answered_model,
            tool_calls=joined_tool_calls(deltas),
        )

    def _read(self, events: Iterable[Any]) -> Iterable[Event]:
        for raw in events:
            event = self.read_event(raw)
            if event is not None:
                yield event

    def _redacted(self, exc: Exception) -> ProviderError:
        err = exc if isinstance(exc, ProviderError) else self.error(exc)
        return ProviderError(
            redact(str(err), self.api_key), outcome=err.outcome, retryable=err.retryable, status=err.status
        )
