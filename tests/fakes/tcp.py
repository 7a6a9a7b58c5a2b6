"""TCP-level faults on 127.0.0.1, for outage tests and bench/chaos.py.

``TcpProxy`` forwards a local port to a real server (PostgreSQL, Redis) and can take it away the
way a crash does — ``kill()`` resets every open connection and refuses new ones — or the way a
stuck server does — ``freeze()`` keeps connections open and forwards nothing — and bring it back
(``revive()``). ``FrozenServer`` is a server that accepts connections and never answers.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from typing import Any


def _listen(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with RST (what the client of a crashed server sees), not a polite FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class FrozenServer:
    """Accepts connections (the kernel's backlog does) and never reads or answers."""

    def __init__(self) -> None:
        self._sock = _listen()
        self.port = self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> FrozenServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        _reset(self._sock)


class TcpProxy:
    def __init__(self, host: str, port: int, *, listen_port: int = 0) -> None:
        self.target = (host, port)
        self._listen_port = listen_port
        self.port = 0
        self._sock: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._frozen = threading.Event()
        self._stopped = threading.Event()

    # --- control ----------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._sock = _listen(self._listen_port or self.port)
        self.port = self._sock.getsockname()[1]
        self._stopped.clear()
        threading.Thread(target=self._accept, args=(self._sock,), daemon=True, name="tcp-proxy").start()
        return self

    def kill(self) -> None:
        """The server is gone: open connections reset, new ones refused."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept(); close() alone would not
            _reset(sock)
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for a, b in pairs:
            _reset(a)
            _reset(b)

    def freeze(self) -> None:
        """The server hangs: connections stay open (new ones are accepted), nothing is forwarded."""
        self._frozen.set()

    def revive(self) -> None:
        """Back on the same port, answering."""
        self._frozen.clear()
        if self._sock is None:
            self.start()

    def stop(self) -> None:
        self._stopped.set()
        self._frozen.clear()
        self.kill()

    # --- forwarding -------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.add((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                if self._frozen.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.2)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._pairs.discard((a, b))
            _reset(a)
            _reset(b)
