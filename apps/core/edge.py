"""Bad input at the edge: URLs carrying characters no Parley URL can hold are refused before any view
(and so before any database query) runs.

A NUL in a channel key (``/webhooks/slack/%00/``, ``/chat/%00/``, ``/ws/chat/%00/``) once reached
PostgreSQL, which cannot hold NUL in text, and came back as a 500 with a traceback: cheap log flooding
for anyone, and a retry from every platform that got the 500. Now:

* a path with a control character (NUL, the other C0 and C1 controls, DEL) or a lone UTF-16
  surrogate is a **404** — no route of Parley's has such a name;
* a query string whose decoded names or values carry NUL or another control character (tab, line
  feed and carriage return aside: a text area sent by GET may hold them) is a **400**;
* on a WebSocket the same path or query closes the socket before the handshake, with code **4404**
  (as does a WebSocket path no route matches).

Two doors, one rule: ``EdgeMiddleware`` for requests through Django (WSGI, the test client), and
``EdgeGuard`` wrapping the whole ASGI application (config/asgi.py), in front of the webhook lane
(which skips Django's middleware) and the WebSocket routes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse

#: Control characters a query value may hold (a GET form's text area).
_QUERY_WHITESPACE = frozenset(b"\t\n\r")

#: WebSocket close code for a refused path (as HTTP's 404).
CLOSE_NOT_FOUND = 4404


def bad_path(path: str) -> bool:
    """Whether a decoded URL path holds a character no Parley URL can: a control character or a lone
    surrogate (what a broken ``\\u`` escape or percent-decoding with ``surrogateescape`` leaves)."""
    if path.isascii():
        return any(ch < " " or ch == "\x7f" for ch in path)
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in path)


def bad_query(query: bytes | str) -> bool:
    """Whether a raw (percent-encoded) query string decodes to a NUL or another control character."""
    raw = query.encode("latin-1", "replace") if isinstance(query, str) else query
    if not raw:
        return False
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    if any((byte < 0x20 and byte not in _QUERY_WHITESPACE) or byte == 0x7F for byte in decoded):
        return True
    # C1 controls (U+0080–U+009F) arrive as UTF-8 C2 80 … C2 9F.
    text = decoded.decode("utf-8", "replace")
    return not text.isascii() and any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n\r" for ch in text)


def _not_found_body() -> bytes:
    return b"Not Found"


class EdgeMiddleware:
    """Django middleware: the rule above for requests that go through Django. First in the stack, so
    no other middleware (sessions, the setup redirect) touches the database for such a request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if bad_path(request.path_info) or bad_path(request.path):
            return HttpResponse(_not_found_body(), status=404, content_type="text/plain; charset=utf-8")
        if bad_query(request.META.get("QUERY_STRING", "")):
            return HttpResponse(b"Bad Request", status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


async def socket_not_found(scope: dict, receive: Any, send: Any) -> None:
    """ASGI app for a WebSocket path no route matches (the last WebSocket route, config/routing.py):
    closed with 4404 before the handshake instead of the router's exception and a traceback."""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.close", "code": CLOSE_NOT_FOUND})


class EdgeGuard:
    """ASGI wrapper: the rule above for every HTTP request and WebSocket of the ASGI application."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        status = 404 if bad_path(path) else 400 if bad_query(scope.get("query_string", b"")) else 0
        if not status:
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            await socket_not_found(scope, receive, send)
            return
        body = _not_found_body() if status == 404 else b"Bad Request"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
