"""A fake tool server: a real Model Context Protocol server (the official SDK's FastMCP, streamable
HTTP) on 127.0.0.1, run by uvicorn on a thread.

    with FakeMCP(token="s3cret") as server:
        server.url                 # http://127.0.0.1:<port>/mcp
        server.calls               # [(tool name, arguments)] in the order they arrived
        server.list_requests       # how often the tool list was asked for
        server.seen_headers        # the Authorization headers of the requests

Tools: ``lookup_order(order_id)`` → ``{"order_id", "status": "shipped", "eta": "2026-12-05"}``;
``slow(seconds)`` sleeps, then answers; ``refund(order_id)`` for choosing among tools. A request
without ``Authorization: Bearer <token>`` (when a token is set) gets 401.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP

# The SDK's stateless mode logs a closed stream after every request it has answered: noise here.
logging.getLogger("mcp.server.streamable_http").setLevel(logging.CRITICAL)


class FakeMCP:
    def __init__(self, token: str = "", host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.calls: list[tuple[str, dict]] = []
        self.list_requests = 0
        self.seen_headers: list[str] = []
        self._stopping = threading.Event()
        mcp = FastMCP("fake-tools", stateless_http=True, json_response=True, log_level="WARNING")

        @mcp.tool(description="Look up an order's shipping status by its order id.")
        def lookup_order(order_id: str) -> dict:
            self.calls.append(("lookup_order", {"order_id": order_id}))
            return {"order_id": order_id, "status": "shipped", "eta": "2026-12-05"}

        @mcp.tool(description="Wait the given number of seconds, then answer.")
        async def slow(seconds: float) -> str:
            self.calls.append(("slow", {"seconds": seconds}))
            for _ in range(int(seconds * 10)):
                if self._stopping.is_set():
                    break
                await asyncio.sleep(0.1)
            return "finally"

        @mcp.tool(description="Refund an order.")
        def refund(order_id: str) -> str:
            self.calls.append(("refund", {"order_id": order_id}))
            return f"refunded {order_id}"

        inner = mcp.streamable_http_app()
        fake = self

        async def app(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = dict(scope.get("headers") or [])
                auth = headers.get(b"authorization", b"").decode()
                fake.seen_headers.append(auth)
                if fake.token and auth != f"Bearer {fake.token}":
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
                body = await _peek_body(receive)
                if b'"tools/list"' in body:
                    fake.list_requests += 1
                receive = _replay(body, receive)
            await inner(scope, receive, send)

        self._sock = socket.socket()
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    def start(self) -> FakeMCP:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> FakeMCP:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


async def _peek_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Any):
    sent = False

    async def again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
