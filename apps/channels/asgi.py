"""The ASGI webhook lane: ``/webhooks/<platform>/<key>/`` served without Django's middleware stack.

Webhooks are Parley's hottest path: every end-user message arrives as one, and platforms expect an
answer within seconds (Slack 3 s, Feishu/DingTalk a few seconds more) or they redeliver. Through
Django's ASGI handler each one would run the whole middleware stack (sessions, CSRF, auth, messages,
security headers — none of which a signed machine-to-machine request needs) on a brand-new
thread, which rebuilds every thread-bound resource per request. The lane instead:

* reads the body on the event loop, refusing it with 413 as soon as it exceeds
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (nothing past the limit is buffered);
* runs the same ``handle_webhook`` the Django view runs, on a fixed pool of long-lived threads
  (``PARLEY_WEBHOOK_THREADS``, default 8) that keep their database and cache clients;
* gives the request a trace id (``X-Request-ID``, as the middleware does for other requests),
  returns pooled database connections after each request, answers 503 within a second when the
  database cannot be reached (``views.guarded``: the platform retries), and turns an unexpected
  exception into a logged JSON 500 rather than a dropped connection.

Everything else (the admin, the API, pages, other paths) goes to Django's ASGI application.
Under WSGI (or Django's test client) the URL is served by the ordinary Django view instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponse

from apps.core import metrics
from apps.core.logging import log_context, new_trace_id
from apps.core.postgres import check_pools
from apps.core.threads import LazyPool

logger = logging.getLogger(__name__)

# The same paths as the Django route (apps/channels/urls.py): <slug:platform>/<str:key>/.
_PATH = re.compile(r"/webhooks/(?P<platform>[-a-zA-Z0-9_]+)/(?P<key>[^/]+)/")


def _json(status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": message}).encode()
    return status, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


def _drop_broken_connections() -> bool:
    """Close this thread's database connections that had an error and no longer answer. Healthy
    ones are kept: a lane thread lives as long as the process, and borrowing a pooled connection
    anew for every request cost ~15 % of the webhook's CPU (so ``DB_POOL_MAX_SIZE`` must exceed
    ``PARLEY_WEBHOOK_THREADS``; the defaults are 20 and 8). Returns whether one was closed."""
    dropped = False
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()
                dropped = True
    if dropped:
        check_pools()  # the pool's other idle connections most likely died with this one
    return dropped


def _run(request: ASGIRequest, platform: str, key: str) -> HttpResponse:
    """The sync part, on a lane thread: what Django's handler and middleware would do around the view."""
    from .views import guarded, handle_webhook

    incoming = request.headers.get("X-Request-ID", "")
    trace_id = incoming if incoming.isalnum() and len(incoming) <= 64 else new_trace_id()
    request.trace_id = trace_id
    _drop_broken_connections()

    def handle() -> HttpResponse:
        try:
            return handle_webhook(request, platform, key)
        except (OperationalError, InterfaceError):
            # The thread's connection died (a database restart or failover): once more on a fresh
            # one. Storing is idempotent (ON CONFLICT DO NOTHING), so nothing doubles.
            if not _drop_broken_connections():
                raise
            return handle_webhook(request, platform, key)

    try:
        with log_context(trace_id=trace_id):
            try:
                # A database that cannot be reached within PARLEY_WEBHOOK_DB_WAIT: 503 (views.guarded).
                response = guarded(handle)
            except Exception:
                logger.exception("webhook failed", extra={"platform": platform, "channel": key})
                response = HttpResponse(
                    json.dumps({"error": "internal error; the message was not accepted, please retry"}),
                    status=500,
                    content_type="application/json",
                )
    finally:
        _drop_broken_connections()
    response["X-Request-ID"] = trace_id
    return response


class WebhookLane:
    """ASGI app: webhook paths here, everything else to ``app`` (Django's ASGI application)."""

    def __init__(self, app: Any, *, threads: int | None = None) -> None:
        self.app = app
        self.threads = threads or settings.PARLEY_WEBHOOK_THREADS
        self._pool = LazyPool("parley-webhook", lambda: self.threads)

    def close_connections(self, timeout: float = 10.0) -> None:
        """Close the database connections the lane's threads keep (see ``LazyPool``)."""
        self._pool.close_connections(timeout)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = _PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        request = ASGIRequest(scope, io.BytesIO(body))
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        response = await loop.run_in_executor(
            self._pool.get(), context.run, _run, request, match["platform"], match["key"]
        )
        content = response.content
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        if not response.has_header("Content-Length"):
            headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        response.close()

    async def _read_body(self, scope: dict, receive: Any, send: Any) -> bytes | None:
        """The whole request body, or None when the client went away or the body is too large (the
        413 has then been sent)."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                platform = _PATH.fullmatch(scope["path"])["platform"]
                metrics.INBOUND_MESSAGES.labels(platform, "rejected").inc()
                status, headers, body = _json(413, "request body too large")
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
