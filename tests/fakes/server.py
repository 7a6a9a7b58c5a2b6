"""A real HTTP server on 127.0.0.1 for faking LLM providers and IM platform APIs in tests.

Subclass-free: register handlers per (method, path prefix); every request is recorded.

    with FakeServer() as srv:
        srv.route("POST", "/v1/chat/completions", lambda req: (200, {"choices": [...]}))
        ... srv.url ...   # http://127.0.0.1:<port>
        srv.requests      # list of RecordedRequest
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (benchmarks time replies by it)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a handler returns. ``body`` may be bytes, str, a JSON-able value, or an iterable of
    bytes chunks (sent with chunked encoding, flushed one by one — for SSE)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[RecordedRequest], Response | tuple[int, Any]]


class FakeServer:
    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without TCP_NODELAY a kept-alive client
            # (Parley reuses its model and platform connections) waits ~40 ms for a delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = RecordedRequest(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                with server._lock:
                    server.requests.append(req)
                handler = server._find(self.command, parts.path)
                if handler is None:
                    self._send(Response(404, {"error": "no route"}))
                    return
                try:
                    result = handler(req)
                except Exception as exc:  # a broken fake must be visible, not hang the client
                    result = Response(599, {"fake_server_error": repr(exc)})
                if isinstance(result, tuple):
                    result = Response(result[0], result[1])
                self._send(result)

            def _send(self, resp: Response) -> None:
                body = resp.body
                headers = dict(resp.headers)
                if isinstance(body, (bytes, str)) or not isinstance(body, Iterable) or isinstance(body, (dict, list)):
                    if isinstance(body, str):
                        data = body.encode()
                    elif isinstance(body, bytes):
                        data = body
                    else:
                        data = json.dumps(body).encode()
                        headers.setdefault("Content-Type", "application/json")
                    self.send_response(resp.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(data)
                    return
                self.send_response(resp.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in body:
                        if isinstance(chunk, str):
                            chunk = chunk.encode()
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path_prefix: str, handler: Handler) -> None:
        """Later routes win over earlier ones for the same prefix (so a test can override)."""
        self.routes.insert(0, (method.upper(), path_prefix, handler))

    def _find(self, method: str, path: str) -> Handler | None:
        for m, prefix, handler in self.routes:
            if m == method and path.startswith(prefix):
                return handler
        return None

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
