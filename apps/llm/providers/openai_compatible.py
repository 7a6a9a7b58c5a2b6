"""Any OpenAI-compatible Chat Completions endpoint, on the official ``openai`` client.

OpenAI, Zhipu GLM, DeepSeek, Qwen (DashScope compatible mode), Moonshot, Ollama, vLLM — the
endpoint is the API base URL (``…/v1``). With an ``api_version`` the endpoint is an Azure OpenAI
resource and the model name is the deployment name.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai

# The client imports its API resources on first use, which costs a good part of a second: a first
# call in a fresh worker would otherwise spend its fallback timeout importing. Import them now.
import openai.resources.chat.completions

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

# Keyless servers (Ollama, a local vLLM) still get a bearer header; the client insists on a key.
KEYLESS_PLACEHOLDER = "not-needed"


class OpenAICompatibleProvider:
    """One call to an OpenAI-compatible endpoint, on the process's shared client for it."""

    def __init__(self, *, endpoint: str, api_key: str, api_version: str = "") -> None:
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.api_version = api_version
        self._call = CallHandle()

    def _client(self) -> openai.OpenAI:
        key = ("openai", self.endpoint, self.api_key, self.api_version)
        return shared_clients.get(key, self._build)

    def _build(self) -> openai.OpenAI:
        common: dict[str, Any] = {
            "api_key": self.api_key or KEYLESS_PLACEHOLDER,
            "max_retries": 0,  # the router falls back to the next model instead
            "http_client": http_client(),
        }
        if self.api_version:
            return openai.AzureOpenAI(azure_endpoint=self.endpoint, api_version=self.api_version, **common)
        return openai.OpenAI(base_url=self.endpoint or None, **common)

    def close(self) -> None:
        """Abandon this call (its streamed response is closed); the shared client stays open."""
        self._call.close()

    def _params(self, messages: list[dict], model: str, max_tokens: int, temperature: float | None) -> dict:
        params: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_tokens,
        }
        if temperature is not None:
            params["temperature"] = temperature
        return params

    def complete(
        self, messages: list[dict], *, model: str, max_tokens: int, timeout: float, temperature: float | None = None
    ) -> Completion:
        started = time.perf_counter()
        try:
            resp = self._client().chat.completions.create(
                **self._params(messages, model, max_tokens, temperature),
                timeout=request_timeout(timeout, streaming=False),
            )
            try:
                text = resp.choices[0].message.content
            except (TypeError, IndexError, AttributeError):
                text = None
            if not isinstance(text, str):
                raise ProviderError("malformed answer: no choices[0].message.content", outcome="error")
            usage = resp.usage
            return Completion(
                text=text,
                tokens_in=getattr(usage, "prompt_tokens", None) or estimate_tokens(_joined(messages)),
                tokens_out=getattr(usage, "completion_tokens", None) or estimate_tokens(text),
                latency_ms=int((time.perf_counter() - started) * 1000),
                model=resp.model or model,
            )
        except Exception as exc:
            raise self._error(exc) from exc

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
            # Usage arrives in a last chunk only when asked for; servers that ignore the option
            # get estimated counts below.
            events = self._client().chat.completions.create(
                **params,
                stream=True,
                stream_options={"include_usage": True},
                timeout=request_timeout(timeout, streaming=True),
            )
            self._call.attach(events)
            with events:
                for chunk in events:
                    if chunk.usage is not None:
                        tokens_in = chunk.usage.prompt_tokens or tokens_in
                        tokens_out = chunk.usage.completion_tokens or tokens_out
                    answered_model = chunk.model or answered_model
                    if not chunk.choices:
                        continue
                    piece = chunk.choices[0].delta.content if chunk.choices[0].delta else None
                    if piece:
                        if not pieces:
                            first_ms = int((time.perf_counter() - started) * 1000)
                        pieces.append(piece)
                        yield piece
        except GeneratorExit:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        text = "".join(pieces)
        return Completion(
            text=text,
            tokens_in=tokens_in or estimate_tokens(_joined(messages)),
            tokens_out=tokens_out or estimate_tokens(text),
            latency_ms=first_ms,
            model=answered_model,
        )

    def _error(self, exc: Exception) -> ProviderError:
        return openai_error(exc, self.api_key)


def _joined(messages: list[dict]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


def provider_message(body: Any, fallback: str) -> str:
    """The provider's own error text from an error body (OpenAI and Anthropic shapes), else ``fallback``."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return fallback


def openai_error(exc: Exception, api_key: str) -> ProviderError:
    if isinstance(exc, ProviderError):
        err = exc
    elif isinstance(exc, openai.APITimeoutError):
        err = ProviderError("the model did not answer in time", outcome="timeout")
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        err = ProviderError(f"cannot connect to the endpoint: {cause}", outcome="error")
    elif isinstance(exc, openai.APIStatusError):
        err = status_error(exc.status_code, provider_message(exc.body, exc.message))
    elif isinstance(exc, (httpx.TimeoutException,)):
        err = ProviderError("the model did not answer in time", outcome="timeout")
    elif isinstance(exc, httpx.HTTPError):
        err = ProviderError(f"connection failed: {exc}", outcome="error")
    elif isinstance(
        exc, (openai.APIResponseValidationError, json.JSONDecodeError, ValueError, TypeError, AttributeError, KeyError)
    ):
        err = ProviderError(
            "malformed answer: the endpoint did not answer in the OpenAI format — check the endpoint URL",
            outcome="error",
        )
    else:
        err = ProviderError(f"{type(exc).__name__}: {exc}", outcome="error")
    return ProviderError(redact(str(err), api_key), outcome=err.outcome, retryable=err.retryable, status=err.status)
