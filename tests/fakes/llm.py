"""Fake model providers: real HTTP servers on 127.0.0.1 speaking the OpenAI and Anthropic wire formats.

    with FakeOpenAI() as fake:                 # or FakeAnthropic()
        fake.set(text="Hi there", tokens_in=12, tokens_out=3)   # the default behaviour
        fake.then(status=500)                  # a one-off for the next call, then the default again
        fake.set(delay=10)                     # hang 10 s before answering (released when the fake stops)
        fake.set(first_token_delay=10)         # streaming: headers at once, then no token for 10 s
        fake.set(garbage=b"<html>oops")        # a 200 with a body that is not the provider's format
        fake.then(tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer"}}])
                                               # ask for tools (ids made up unless given; arguments a
                                               # dict, or a str sent as written — malformed on purpose)
        fake.set(text=lambda body: ...)        # the text made from the request (e.g. a tool's result)
        ... fake.url ...                       # the base URL a ModelConfig's endpoint takes
        fake.calls                             # number of completion requests
        fake.requests                          # RecordedRequest list (``.json()`` is the request body)

Streaming is chosen by the request (``"stream": true``), as the real APIs do. Both fakes also
answer Azure OpenAI's deployment paths (``/openai/deployments/<name>/chat/completions``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from tests.fakes.server import FakeServer, RecordedRequest, Response


@dataclass
class Behaviour:
    """How the fake answers one call."""

    text: Any = "Hello from the fake model."  # or a callable: request body → text
    tool_calls: list[dict] | None = None  # [{"name", "arguments", "id"?}]: the model asks for these tools
    status: int = 200
    error_message: str = ""  # the provider's error text for non-2xx statuses
    delay: float = 0.0  # seconds before the response starts
    first_token_delay: float = 0.0  # streaming: seconds after the headers before the first token
    token_delay: float = 0.0  # streaming: seconds between pieces
    garbage: bytes | None = None  # a 200 body in no known format
    tokens_in: int | None = None  # None: counted from the request (words)
    tokens_out: int | None = None  # None: counted from ``text`` (words)
    headers: dict[str, str] | None = None


def _pieces(text: str) -> list[str]:
    """Split ``text`` into word-sized pieces that join back to it exactly."""
    out, current = [], ""
    for ch in text:
        current += ch
        if ch == " ":
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out or [""]


def _count_request_words(body: dict) -> int:
    words = 0
    for m in body.get("messages") or []:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        words += len(str(content or "").split())
    system = body.get("system")
    if isinstance(system, str):
        words += len(system.split())
    return max(words, 1)


def _tool_call(call: dict, n: int) -> dict:
    arguments = call.get("arguments", {})
    return {
        "id": call.get("id") or f"call_{uuid.uuid4().hex[:10]}_{n}",
        "name": call["name"],
        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
    }


def tool_results(body: dict) -> list[str]:
    """The tool results a request carries (either wire format, or as text), oldest first."""
    found: list[str] = []
    for m in body.get("messages") or []:
        if m.get("role") == "tool":
            found.append(str(m.get("content")))
        elif isinstance(m.get("content"), str) and m["content"].startswith("[Result of the tool"):
            found.append(m["content"].split("\n", 1)[-1])  # told as text to a model asked without tools
        elif isinstance(m.get("content"), list):
            for block in m["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    content = block.get("content")
                    if isinstance(content, list):
                        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                    found.append(str(content))
    return found


class _FakeProvider:
    """Shared machinery: behaviours, hang-until-stopped delays, recorded requests."""

    paths: tuple[str, ...] = ()

    def __init__(self, server: FakeServer | None = None) -> None:
        self._own_server = server is None
        self.server = server or FakeServer()
        self._default = Behaviour()
        self._queue: list[Behaviour] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        for path in self.paths:
            self.server.route("POST", path, self._handle)

    # --- configuration -------------------------------------------------------------------------
    def set(self, **kw: Any) -> _FakeProvider:
        """Change the default behaviour (fields of ``Behaviour``); clears queued one-offs."""
        with self._lock:
            self._default = replace(Behaviour(), **kw)
            self._queue.clear()
        return self

    def then(self, **kw: Any) -> _FakeProvider:
        """Queue a one-off behaviour for the next call not yet answered."""
        with self._lock:
            self._queue.append(replace(Behaviour(), **kw))
        return self

    # --- inspection ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        return [r for p in self.paths for r in self.server.requests_to(p)]

    @property
    def calls(self) -> int:
        return len(self.requests)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> _FakeProvider:
        if self._own_server:
            self.server.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers that are "hanging"
        if self._own_server:
            self.server.stop()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- serving -------------------------------------------------------------------------------
    def _next(self) -> Behaviour:
        with self._lock:
            return self._queue.pop(0) if self._queue else self._default

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _handle(self, req: RecordedRequest) -> Response:
        b = self._next()
        self._sleep(b.delay)
        try:
            body = req.json() or {}
        except ValueError:
            return Response(400, self.error_body(400, "request body is not JSON"))
        if b.status >= 400:
            headers = dict(b.headers or {})
            if b.status == 429:
                headers.setdefault("Retry-After", "1")
            return Response(b.status, self.error_body(b.status, b.error_message or f"fake error {b.status}"), headers)
        if b.garbage is not None:
            return Response(200, b.garbage, {"Content-Type": "application/json", **(b.headers or {})})
        if callable(b.text):
            b = replace(b, text=b.text(body))
        if b.tool_calls and not body.get("tools"):
            b = replace(b, tool_calls=None)  # a model cannot call tools it was not offered
        if b.tool_calls:
            b = replace(b, tool_calls=[_tool_call(c, n) for n, c in enumerate(b.tool_calls)])
        tokens_in = b.tokens_in if b.tokens_in is not None else _count_request_words(body)
        tokens_out = b.tokens_out if b.tokens_out is not None else max(len(b.text.split()), 1)
        model = str(body.get("model") or "fake-model")
        if body.get("stream"):
            events = self.sse(b, model=model, tokens_in=tokens_in, tokens_out=tokens_out, body=body)
            return Response(200, self._paced(events, b), {"Content-Type": "text/event-stream", **(b.headers or {})})
        return Response(200, self.json_body(b, model=model, tokens_in=tokens_in, tokens_out=tokens_out))

    def _paced(self, events: Iterator[bytes], b: Behaviour) -> Iterator[bytes]:
        first = True
        for chunk in events:
            if chunk.startswith(b"#token"):
                chunk = chunk[len(b"#token") :]
                self._sleep(b.first_token_delay if first else b.token_delay)
                first = False
                if self._stopping.is_set():
                    return
            yield chunk

    # subclasses: the wire format
    def error_body(self, status: int, message: str) -> dict:
        raise NotImplementedError

    def json_body(self, b: Behaviour, *, model: str, tokens_in: int, tokens_out: int) -> dict:
        raise NotImplementedError

    def sse(self, b: Behaviour, *, model: str, tokens_in: int, tokens_out: int, body: dict) -> Iterator[bytes]:
        raise NotImplementedError


class FakeOpenAI(_FakeProvider):
    """OpenAI Chat Completions (``POST {url}/chat/completions``), also on Azure deployment paths."""

    paths = ("/v1/chat/completions", "/openai/deployments/")

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    @property
    def azure_url(self) -> str:
        return self.server.url

    def error_body(self, status: int, message: str) -> dict:
        kind = {401: "invalid_request_error", 429: "rate_limit_error"}.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}

    def json_body(self, b: Behaviour, *, model: str, tokens_in: int, tokens_out: int) -> dict:
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": self._message(b), "finish_reason": "tool_calls" if b.tool_calls else "stop"}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }

    @staticmethod
    def _message(b: Behaviour) -> dict:
        message: dict[str, Any] = {"role": "assistant", "content": b.text or (None if b.tool_calls else "")}
        if b.tool_calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in b.tool_calls
            ]
        return message

    def sse(self, b: Behaviour, *, model: str, tokens_in: int, tokens_out: int, body: dict) -> Iterator[bytes]:
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:12], int(time.time())

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
            data: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
            data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else []
            if usage is not None:
                data["usage"] = usage
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        if b.text:
            for piece in _pieces(b.text):
                yield b"#token" + chunk({"content": piece})
        for index, call in enumerate(b.tool_calls or []):
            # As the real API streams them: id and name first, then the arguments in pieces.
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            yield b"#token" + chunk({"tool_calls": [head]})
            args = call["arguments"]
            for start in range(0, len(args), 7):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[start : start + 7]}}]})
        yield chunk({}, "tool_calls" if b.tool_calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            }
            yield chunk({}, usage=usage, choices=False)
        yield b"data: [DONE]\n\n"


def _object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}  # the Messages API always carries an object


class FakeAnthropic(_FakeProvider):
    """Anthropic Messages (``POST {url}/v1/messages``)."""

    paths = ("/v1/messages",)

    @property
    def url(self) -> str:
        return self.server.url

    def error_body(self, status: int, message: str) -> dict:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def json_body(self, b: Behaviour, *, model: str, tokens_in: int, tokens_out: int) -> dict:
        return {
            "id": "msg_" + uuid.uuid4().hex[:12],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": ([{"type": "text", "text": b.text}] if b.text or not b.tool_calls else [])
            + [
                {"type": "tool_use", "id": c["id"], "name": c["name"], "input": _object(c["arguments"])}
                for c in b.tool_calls or []
            ],
            "stop_reason": "tool_use" if b.tool_calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }

    def sse(self, b: Behaviour, *, model: str, tokens_in: int, tokens_out: int, body: dict) -> Iterator[bytes]:
        def event(name: str, data: dict) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        message = self.json_body(b, model=model, tokens_in=tokens_in, tokens_out=1)
        message.update(content=[], stop_reason=None)
        yield event("message_start", {"type": "message_start", "message": message})
        index = 0
        if b.text or not b.tool_calls:
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            yield event("ping", {"type": "ping"})
            for piece in _pieces(b.text):
                delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
                yield b"#token" + event("content_block_delta", delta)
            yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        for n, call in enumerate(b.tool_calls or [], start=index):
            block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
            yield b"#token" + event(
                "content_block_start", {"type": "content_block_start", "index": n, "content_block": block}
            )
            args = call["arguments"]
            for start in range(0, len(args), 7):
                delta = {"type": "input_json_delta", "partial_json": args[start : start + 7]}
                yield event("content_block_delta", {"type": "content_block_delta", "index": n, "delta": delta})
            yield event("content_block_stop", {"type": "content_block_stop", "index": n})
        yield event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if b.tool_calls else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": tokens_out},
            },
        )
        yield event("message_stop", {"type": "message_stop"})
