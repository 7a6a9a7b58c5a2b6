"""Any OpenAI-compatible Chat Completions endpoint, on the official ``openai`` client.

OpenAI, Zhipu GLM, DeepSeek, Qwen (DashScope compatible mode), Moonshot, Ollama, vLLM — the
endpoint is the API base URL (``…/v1``). With an ``api_version`` the endpoint is an Azure OpenAI
resource and the model name is the deployment name.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai

# The client imports its API resources on first use, which costs a good part of a second: a first
# call in a fresh worker would otherwise spend its fallback timeout importing. Import them now.
import openai.resources.chat.completions

from ..types import ProviderError, ToolCall
from .base import redact, status_error
from .sdk import Answer, Event, SDKProvider, ToolDelta

# Keyless servers (Ollama, a local vLLM) still get a bearer header; the client insists on a key.
KEYLESS_PLACEHOLDER = "not-needed"


class OpenAICompatibleProvider(SDKProvider):
    """One call to an OpenAI-compatible endpoint, on the process's shared client for it."""

    kind = "openai"

    def __init__(self, *, endpoint: str, api_key: str, api_version: str = "") -> None:
        super().__init__(endpoint=endpoint.rstrip("/"), api_key=api_key, variant=api_version)
        self.api_version = api_version

    def build_client(self, http: Any) -> openai.OpenAI:
        common: dict[str, Any] = {
            "api_key": self.api_key or KEYLESS_PLACEHOLDER,
            "max_retries": 0,  # the router falls back to the next model instead
            "http_client": http,
        }
        if self.api_version:
            return openai.AzureOpenAI(azure_endpoint=self.endpoint, api_version=self.api_version, **common)
        return openai.OpenAI(base_url=self.endpoint or None, **common)

    def params(
        self, messages: list[dict], model: str, max_tokens: int, temperature: float | None, tools: list[dict] | None
    ) -> dict:
        params: dict[str, Any] = {
            "model": model,
            "messages": [to_openai(m) for m in messages],
            "max_tokens": max_tokens,
        }
        if temperature is not None:
            params["temperature"] = temperature
        if tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t["name"], "description": t["description"], "parameters": t["parameters"]},
                }
                for t in tools
            ]
        return params

    def create(self, client: openai.OpenAI, params: dict, *, stream: bool, timeout: Any) -> Any:
        if stream:
            # Usage arrives in a last chunk only when asked for; servers that ignore the option get
            # estimated counts.
            return client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}, timeout=timeout
            )
        return client.chat.completions.create(**params, timeout=timeout)

    def read_answer(self, response: Any) -> Answer:
        try:
            message = response.choices[0].message
            text = message.content
            calls = [
                ToolCall(id=c.id or "", name=c.function.name or "", arguments=c.function.arguments or "")
                for c in (message.tool_calls or [])
                if getattr(c, "function", None) is not None
            ]
        except (TypeError, IndexError, AttributeError):
            text, calls = None, []
        if text is None and calls:
            text = ""
        if not isinstance(text, str):
            raise ProviderError("malformed answer: no choices[0].message.content", outcome="error")
        usage = response.usage
        return Answer(
            text=text,
            tokens_in=getattr(usage, "prompt_tokens", None),
            tokens_out=getattr(usage, "completion_tokens", None),
            model=response.model or "",
            tool_calls=calls,
        )

    def read_event(self, chunk: Any) -> Event:
        event = Event(model=chunk.model or "")
        if chunk.usage is not None:
            event.tokens_in = chunk.usage.prompt_tokens
            event.tokens_out = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta:
            delta = chunk.choices[0].delta
            event.text = delta.content or ""
            for piece in delta.tool_calls or []:
                function = piece.function
                event.tool_deltas.append(
                    ToolDelta(
                        index=piece.index or 0,
                        id=piece.id or "",
                        name=(function.name if function else "") or "",
                        arguments=(function.arguments if function else "") or "",
                    )
                )
        return event

    def error(self, exc: Exception) -> ProviderError:
        return openai_error(exc, self.api_key)


def to_openai(message: dict) -> dict:
    """One turn in the Chat Completions form (tool calls and tool results included)."""
    role = message["role"]
    if role == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": str(message["content"])}
    if role == "assistant" and message.get("tool_calls"):
        return {
            "role": "assistant",
            "content": message.get("content") or None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"] or "{}"},
                }
                for c in message["tool_calls"]
            ],
        }
    return {"role": role, "content": message["content"]}


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
