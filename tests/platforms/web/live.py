"""A real Parley on 127.0.0.1: uvicorn serving ``config.asgi`` on a thread, restartable on the same
port (to drop every socket the way a deploy does)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn


class LiveParley:
    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveParley:
        from config.asgi import application

        config = uvicorn.Config(
            application, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning", ws_ping_interval=None
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # don't wait for open sockets: they are what we drop
        if self._thread is not None:
            self._thread.join(timeout=20)
        self._server = self._thread = None
        from config.asgi import webhook_lane

        webhook_lane.close_connections()  # its threads keep theirs; the test database is dropped later

    def restart(self) -> None:
        self.stop()
        self.start()
