"""The bench's model: an OpenAI-compatible Chat Completions server on 127.0.0.1 that answers after
a fixed delay (200 ms by default).

Why not ``tests/fakes/llm.py``: that fake runs on ``ThreadingHTTPServer`` — a thread per
connection, fine for tests, but at hundreds of calls per second its own CPU use would be charged to
Parley on a two-core machine. This one is a raw ASGI app on uvicorn (uvloop + httptools): a 200 ms
wait costs it nothing.

The answer names the marker found in the last user message (``[bench:<id>]``), so the bench can
tell which message a reply belongs to and spot a reply sent twice. ``GET /_bench/calls`` returns
how many completions were asked for (the cache phase checks that a hit made no call).

    python -m bench.harness.fake_llm --port 18001 --delay 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid

MARKER_RE = re.compile(r"\[bench:([A-Za-z0-9_-]{1,64})\]")


class FakeLLM:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "GET" and path == "/_bench/calls":
            await _json(send, 200, {"calls": self.calls})
            return
        if scope["method"] != "POST" or not path.endswith("/chat/completions"):
            await _json(send, 404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
            return
        self.calls += 1
        try:
            request = json.loads(body)
        except ValueError:
            await _json(send, 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        await asyncio.sleep(self.delay)
        last = ""
        for m in reversed(request.get("messages") or []):
            if m.get("role") == "user":
                last = str(m.get("content") or "")
                break
        found = MARKER_RE.search(last)
        text = f"Bench answer [bench:{found.group(1)}]" if found else "Bench answer."
        model = str(request.get("model") or "bench-model")
        tokens_in = max(1, sum(len(str(m.get("content") or "").split()) for m in request.get("messages") or []))
        if request.get("stream"):
            await self._stream(send, text, model, tokens_in)
            return
        await _json(
            send,
            200,
            {
                "id": "chatcmpl-" + uuid.uuid4().hex[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": tokens_in, "completion_tokens": 3, "total_tokens": tokens_in + 3},
            },
        )

    async def _stream(self, send, text: str, model: str, tokens_in: int) -> None:
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:12], int(time.time())

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        payload = chunk({"role": "assistant", "content": ""}) + chunk({"content": text}) + chunk({}, "stop")
        await send({"type": "http.response.body", "body": payload + b"data: [DONE]\n\n"})


async def _json(send, status: int, data: dict) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    uvicorn.run(
        FakeLLM(args.delay),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
