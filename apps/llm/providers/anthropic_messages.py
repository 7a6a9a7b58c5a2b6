"""Anthropic's Messages API, on the official ``anthropic`` client."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import anthropic.resources.messages  # resources load on first use otherwise: see openai_compatible
import httpx

from ..types import Completion, ProviderError
from .base import (
    CallHandle,
    TextStream,
    estimate_tokens,
    http_client,
    redact,
    request_timeout,
    shared_clients,
    status_error,
)
from .openai_compatible import provider_message


def to_anthropic(messages: list[dict]) -> tuple[str, list[dict]]:
    """(system prompt, turns) in the shape the Messages API wants: system text apart, turns starting
    with the user and alternating (consecutive turns of one role are joined)."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system" and m.get("content"))
    turns: list[dict] = []
    for m in messages:
        role = m["role"]
        if role not in ("user", "assistant") or not m.get("content"):
            continue
        if not turns and role == "assistant":
            continue  # e.g. a greeting before the user's first message
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + str(m["content"])
        else:
            turns.append({"role": role, "content": str(m["content"])})
    if not turns:
        raise ProviderError("nothing to answer: no user message", outcome="error", retryable=False)
    return system, turns


class AnthropicProvider:
    """One call to the Messages API, on the process's shared client for the endpoint and key."""

    def __init__(self, *, endpoint: str, api_key: str) -> None:
        endpoint = endpoint.rstrip("/")
        # The client adds /v1/messages itself; accept a base given with /v1 too.
        self.endpoint = endpoint[:-3] if endpoint.endswith("/v1") else endpoint
        self.api_key = api_key
        self._call = CallHandle()

    def _client(self) -> anthropic.Anthropic:
        return shared_clients.get(("anthropic", self.endpoint, self.api_key, ""), self._build)

    def _build(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=self.api_key or "missing", base_url=self.endpoint or None, max_retries=0, http_client=http_client()
        )

    def close(self) -> None:
        """Abandon this call (its streamed response is closed); the shared client stays open."""
        self._call.close()

    def _params(self, messages: list[dict], model: str, max_tokens: int, temperature: float | None) -> dict:
        system, turns = to_anthropic(messages)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
        if system:
            params["system"] = system
        if temperature is not None:
            params["temperature"] = min(temperature, 1.0)  # Anthropic's range is 0–1
        return params

    def complete(
        self, messages: list[dict], *, model: str, max_tokens: int, timeout: float, temperature: float | None = None
    ) -> Completion:
        started = time.perf_counter()
        try:
            params = self._params(messages, model, max_tokens, temperature)
            resp = self._client().messages.create(**params, timeout=request_timeout(timeout, streaming=False))
            blocks = resp.content
            if not isinstance(blocks, list):
                raise ProviderError("malformed answer: no content blocks", outcome="error")
            text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text")
            usage = resp.usage
            return Completion(
                text=text,
                tokens_in=getattr(usage, "input_tokens", None) or estimate_tokens(json.dumps(params["messages"])),
                tokens_out=getattr(usage, "output_tokens", None) or estimate_tokens(text),
                latency_ms=int((time.perf_counter() - started) * 1000),
                model=resp.model or model,
            )
        except Exception as exc:
            raise anthropic_error(exc, self.api_key) from exc

    def stream(
        self, messages: list[dict], *, model: str, max_tokens: int, timeout: float, temperature: float | None = None
    ) -> TextStream:
        started = time.perf_counter()
        first_ms = 0
        pieces: list[str] = []
        tokens_in = tokens_out = 0
        answered_model = model
        try:
            params = self._params(messages, model, max_tokens, temperature)
            events = self._client().messages.create(
                **params, stream=True, timeout=request_timeout(timeout, streaming=True)
            )
            self._call.attach(events)
            with events:
                for event in events:
                    kind = getattr(event, "type", "")
                    if kind == "message_start":
                        usage = event.message.usage
                        tokens_in = getattr(usage, "input_tokens", 0) or 0
                        answered_model = event.message.model or answered_model
                    elif kind == "content_block_delta":
                        piece = getattr(event.delta, "text", None)
                        if piece:
                            if not pieces:
                                first_ms = int((time.perf_counter() - started) * 1000)
                            pieces.append(piece)
                            yield piece
                    elif kind == "message_delta":
                        tokens_out = getattr(event.usage, "output_tokens", 0) or tokens_out
                    elif kind == "error":  # an error event mid-stream (e.g. overloaded)
                        raise ProviderError(f"stream error: {getattr(event, 'error', '')}", outcome="error")
        except GeneratorExit:
            raise
        except Exception as exc:
            raise anthropic_error(exc, self.api_key) from exc
        text = "".join(pieces)
        return Completion(
            text=text,
            tokens_in=tokens_in or estimate_tokens(json.dumps(messages)),
            tokens_out=tokens_out or estimate_tokens(text),
            latency_ms=first_ms,
            model=answered_model,
        )


def anthropic_error(exc: Exception, api_key: str) -> ProviderError:
    if isinstance(exc, ProviderError):
        err = exc
    elif isinstance(exc, anthropic.APITimeoutError):
        err = ProviderError("the model did not answer in time", outcome="timeout")
    elif isinstance(exc, anthropic.APIConnectionError):
        err = ProviderError(f"cannot connect to the endpoint: {exc.__cause__ or exc}", outcome="error")
    elif isinstance(exc, anthropic.APIStatusError):
        err = status_error(exc.status_code, provider_message(exc.body, exc.message))
    elif isinstance(exc, httpx.TimeoutException):
        err = ProviderError("the model did not answer in time", outcome="timeout")
    elif isinstance(exc, httpx.HTTPError):
        err = ProviderError(f"connection failed: {exc}", outcome="error")
    elif isinstance(exc, (anthropic.APIResponseValidationError, ValueError, TypeError, AttributeError, KeyError)):
        err = ProviderError(
            "malformed answer: the endpoint did not answer in the Anthropic format — check the endpoint URL",
            outcome="error",
        )
    else:
        err = ProviderError(f"{type(exc).__name__}: {exc}", outcome="error")
    return ProviderError(redact(str(err), api_key), outcome=err.outcome, retryable=err.retryable, status=err.status)
