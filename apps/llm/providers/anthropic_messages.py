"""Anthropic's Messages API, on the official ``anthropic`` client."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import anthropic.resources.messages  # resources load on first use otherwise: see openai_compatible
import httpx

from ..types import ProviderError, ToolCall
from .base import redact, status_error
from .openai_compatible import provider_message
from .sdk import Answer, Event, SDKProvider, ToolDelta


def to_anthropic(messages: list[dict]) -> tuple[str, list[dict]]:
    """(system prompt, turns) in the shape the Messages API wants: system text apart, turns starting
    with the user and alternating (consecutive turns of one role are joined). A tool-calling
    assistant turn becomes ``tool_use`` blocks, tool results ``tool_result`` blocks of a user turn."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system" and m.get("content"))
    turns: list[dict] = []
    for m in messages:
        role = m["role"]
        content: str | list[dict]
        if role == "tool":
            role = "user"
            content = [{"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": str(m["content"])}]
        elif role == "assistant" and m.get("tool_calls"):
            content = [{"type": "text", "text": str(m["content"])}] if m.get("content") else []
            content += [
                {"type": "tool_use", "id": c["id"], "name": c["name"], "input": _input(c["arguments"])}
                for c in m["tool_calls"]
            ]
        elif role in ("user", "assistant") and m.get("content"):
            content = str(m["content"])
        else:
            continue
        if not turns and role == "assistant":
            continue  # e.g. a greeting before the user's first message
        if turns and turns[-1]["role"] == role:
            before = turns[-1]["content"]
            if isinstance(before, str) and isinstance(content, str):
                turns[-1]["content"] = before + "\n\n" + content
            else:
                turns[-1]["content"] = _blocks(before) + _blocks(content)
        else:
            turns.append({"role": role, "content": content})
    if not turns:
        raise ProviderError("nothing to answer: no user message", outcome="error", retryable=False)
    return system, turns


def _blocks(content: str | list[dict]) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _input(arguments: str) -> dict:
    """A tool call's arguments as the object ``tool_use`` carries (``{}`` for text that is none)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class AnthropicProvider(SDKProvider):
    """One call to the Messages API, on the process's shared client for the endpoint and key."""

    kind = "anthropic"

    def __init__(self, *, endpoint: str, api_key: str) -> None:
        endpoint = endpoint.rstrip("/")
        # The client adds /v1/messages itself; accept a base given with /v1 too.
        super().__init__(endpoint=endpoint[:-3] if endpoint.endswith("/v1") else endpoint, api_key=api_key)

    def build_client(self, http: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=self.api_key or "missing", base_url=self.endpoint or None, max_retries=0, http_client=http
        )

    def params(
        self, messages: list[dict], model: str, max_tokens: int, temperature: float | None, tools: list[dict] | None
    ) -> dict:
        system, turns = to_anthropic(messages)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns}
        if system:
            params["system"] = system
        if tools:
            params["tools"] = [
                {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in tools
            ]
        if temperature is not None:
            params["temperature"] = min(temperature, 1.0)  # Anthropic's range is 0–1
        return params

    def create(self, client: anthropic.Anthropic, params: dict, *, stream: bool, timeout: Any) -> Any:
        if stream:
            return client.messages.create(**params, stream=True, timeout=timeout)
        return client.messages.create(**params, timeout=timeout)

    def read_answer(self, response: Any) -> Answer:
        blocks = response.content
        if not isinstance(blocks, list):
            raise ProviderError("malformed answer: no content blocks", outcome="error")
        usage = response.usage
        calls = [
            ToolCall(id=b.id, name=b.name, arguments=json.dumps(b.input, ensure_ascii=False))
            for b in blocks
            if getattr(b, "type", "") == "tool_use"
        ]
        return Answer(
            text="".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text"),
            tokens_in=getattr(usage, "input_tokens", None),
            tokens_out=getattr(usage, "output_tokens", None),
            model=response.model or "",
            tool_calls=calls,
        )

    def read_event(self, event: Any) -> Event | None:
        kind = getattr(event, "type", "")
        if kind == "message_start":
            usage = event.message.usage
            return Event(tokens_in=getattr(usage, "input_tokens", 0) or 0, model=event.message.model or "")
        if kind == "content_block_start" and getattr(event.content_block, "type", "") == "tool_use":
            block = event.content_block
            return Event(tool_deltas=[ToolDelta(index=event.index, id=block.id, name=block.name)])
        if kind == "content_block_delta":
            if getattr(event.delta, "type", "") == "input_json_delta":
                return Event(tool_deltas=[ToolDelta(index=event.index, arguments=event.delta.partial_json or "")])
            return Event(text=getattr(event.delta, "text", None) or "")
        if kind == "message_delta":
            return Event(tokens_out=getattr(event.usage, "output_tokens", 0) or 0)
        if kind == "error":  # an error event mid-stream (e.g. overloaded)
            raise ProviderError(f"stream error: {getattr(event, 'error', '')}", outcome="error")
        return None

    def error(self, exc: Exception) -> ProviderError:
        return anthropic_error(exc, self.api_key)


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
