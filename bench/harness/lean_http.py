"""A lean HTTP/1.1 keep-alive client for the load generator.

The bench must offer 500 requests per second from one Python process that shares two cores with
the server it measures. httpx's async client spends about a millisecond of CPU per request (its
pool, its header models, h11), so at a few hundred requests per second the *generator* became
the bottleneck and its own queueing showed up as server latency (docs/performance.md, finding 8).

This client keeps ``connections`` persistent connections, writes each request as one pre-built
byte string and parses responses with httptools (the C parser uvicorn uses), so a request costs
tens of microseconds. It only does what the bench needs: POST/GET to one host, status code and
body back, Content-Length or chunked responses, and a per-request timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


@dataclass
class Response:
    status_code: int
    content: bytes


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.body: list[bytes] = []
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection closed by the server"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.parser.get_status_code(), b"".join(self.body)))
        self.body = []
        if not self.parser.should_keep_alive():
            self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanClient:
    """``await client.post(url, content=…, headers=…)`` → ``Response`` (status_code, content)."""

    def __init__(self, connections: int, *, timeout: float = 20.0) -> None:
        self.max_connections = connections
        self.timeout = timeout
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(connections)

    async def _connect(self, host: str, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, host, port)
        return conn

    async def request(
        self, method: str, url: str, *, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(content)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content
        async with self._slots:
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            if conn is None:
                conn = await asyncio.wait_for(self._connect(host, port), self.timeout)
            waiter = asyncio.get_running_loop().create_future()
            conn.waiter = waiter
            assert conn.transport is not None
            conn.transport.write(raw)
            try:
                response = await asyncio.wait_for(waiter, self.timeout)
            except BaseException:
                conn.close()
                raise
            if not conn.closed:
                self._idle.append(conn)
            return response

    async def post(self, url: str, *, content: bytes = b"", headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", url, content=content, headers=headers)

    async def get(self, url: str, *, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", url, headers=headers)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
