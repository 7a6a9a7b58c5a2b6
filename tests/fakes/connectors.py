"""The platform end of a long connection, for the fakes of the platforms that have one
(``tests/platforms/<name>/fake.py``): ``FakeSocketServer``, a real WebSocket server (the
``websockets`` library) on 127.0.0.1, on its own thread and event loop. It records every connection
(path and query: the ticket) and every frame the client sends, pushes frames on request, greets new
connections (Slack's ``hello``), answers frames through a callback (Feishu's pongs), and can drop
connections the way a network does. ``wait_until`` polls for what a test waits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

QUIET = logging.getLogger("tests.fakes.socket")
QUIET.setLevel(logging.WARNING)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it is truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class FakeSocketServer:
    def __init__(
        self,
        *,
        greeting: dict | None = None,
        answer: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] = json.loads,
    ) -> None:
        self.greeting = greeting
        self.answer = answer  # a reply (dict: sent as JSON, bytes: as is) for a received frame, or None
        self.decode = decode  # how a received frame is recorded (JSON by default)
        self.received: list[Any] = []
        self.paths: list[str] = []
        self.live: list[ServerConnection] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-socket", daemon=True)
        self._server: Any = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeSocketServer:
        self._thread.start()

        async def start() -> Any:
            # The platform's side of the log is not Parley's: kept quiet, so tests that look for
            # secrets in the captured log see only what Parley wrote.
            return await serve(self._handle, "127.0.0.1", 0, logger=QUIET)

        self._server = self._call(start())
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> FakeSocketServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    # -- what the client did ---------------------------------------------------------------------
    @property
    def connects(self) -> int:
        with self._lock:
            return len(self.paths)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self.live)

    def frames(self, predicate: Callable[[Any], bool] = lambda f: True) -> list[Any]:
        with self._lock:
            return [f for f in self.received if predicate(f)]

    # -- what the platform does ------------------------------------------------------------------
    def push(self, frame: dict | bytes) -> None:
        """Send ``frame`` (a dict as JSON text, bytes as a binary frame) on the newest open connection
        (AssertionError when none is open)."""

        async def send() -> None:
            with self._lock:
                assert self.live, "no client is connected"
                connection = self.live[-1]
            await connection.send(frame if isinstance(frame, bytes) else json.dumps(frame, ensure_ascii=False))

        self._call(send())

    def drop(self) -> None:
        """Cut every open connection without a closing handshake, as a network failure does."""

        async def cut() -> None:
            with self._lock:
                connections = list(self.live)
            for connection in connections:
                connection.transport.abort()

        self._call(cut())

    async def _handle(self, connection: ServerConnection) -> None:
        with self._lock:
            self.paths.append(connection.request.path if connection.request else "")
            self.live.append(connection)
        try:
            if self.greeting is not None:
                await connection.send(json.dumps(self.greeting))
            async for raw in connection:
                frame = self.decode(raw)
                with self._lock:
                    self.received.append(frame)
                reply = self.answer(frame) if self.answer else None
                if reply is not None:
                    await connection.send(reply if isinstance(reply, bytes) else json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self.live.remove(connection)
