"""The single webhook URL every IM platform calls: ``/webhooks/<platform>/<channel key>/``.

It verifies and parses through the platform's adapter, stores each message (``accept``), and
acknowledges. No model or platform I/O happens here, so it answers in milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core import breaker, metrics
from apps.core.crypto import SecretDecryptionError
from apps.core.logging import log_context
from apps.core.postgres import check_pools, connect_within

from . import conversation_port
from .clicks import answer_rating_click
from .platforms.base import RawRequest, WebhookRejected
from .platforms.registry import get_adapter
from .services import channel_for_webhook

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def handle_webhook(request: HttpRequest, platform: str, key: str) -> HttpResponse:
    """Verify, parse, store and acknowledge one webhook request (no model or platform I/O).

    Called by the Django view below and by the ASGI webhook lane (``apps/channels/asgi.py``), which
    runs it on a small pool of long-lived threads without the middleware stack."""
    started = time.perf_counter()
    adapter = get_adapter(platform)
    if adapter is None or platform == "web":
        return _error(404, f"unknown platform '{platform}'")
    if request.method not in ("GET", "POST"):
        return _error(405, "method not allowed")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "invalid Content-Length")
    if declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        metrics.INBOUND_MESSAGES.labels(platform, "rejected").inc()
        return _error(413, "request body too large")
    try:
        request.body  # noqa: B018 - read the raw body once, within the size limit
    except RequestDataTooBig:
        metrics.INBOUND_MESSAGES.labels(platform, "rejected").inc()
        return _error(413, "request body too large")

    try:
        channel = channel_for_webhook(platform=platform, key=key)
        if channel is None:
            return _error(404, "unknown or disabled channel")
    except SecretDecryptionError:  # credentials are decrypted as the row is loaded
        # Not the sender's fault: the deployment's keys changed. 503 makes platforms retry later.
        logger.error("webhook refused: channel credentials cannot be decrypted", extra={"channel": key})
        return _error(503, "this channel's credentials cannot be read; the operator must check PARLEY_ENCRYPTION_KEYS")

    raw = RawRequest.from_http(request)
    with log_context(tenant=channel.bot.tenant.slug, bot=channel.bot.slug, platform=platform):
        try:
            response = adapter.handshake(raw, channel)
            if response is not None:
                return response
            adapter.verify(raw, channel)
            click = adapter.rating_click(raw, channel)
            if click is not None:
                return _rating(raw, adapter, channel, click, started)
            inbounds = adapter.parse(raw, channel)
        except WebhookRejected as exc:
            metrics.INBOUND_MESSAGES.labels(platform, exc.outcome).inc()
            logger.warning("webhook rejected: %s", exc.reason, extra={"status": exc.status})
            return _error(exc.status, exc.reason)
        conversation_port.accept(channel=channel, inbounds=inbounds, trace_id=getattr(request, "trace_id", ""))
        response = adapter.ack(raw, channel, inbounds)
    metrics.WEBHOOK_ACK.labels(platform).observe(time.perf_counter() - started)
    return response


def _rating(request: RawRequest, adapter: Any, channel: Any, click: Any, started: float) -> HttpResponse:
    response = answer_rating_click(adapter, channel, request, click)
    metrics.WEBHOOK_ACK.labels(adapter.platform).observe(time.perf_counter() - started)
    return response


def database_unavailable() -> JsonResponse:
    """The message could not be stored: 503 with ``Retry-After``, so the platform sends it again."""
    response = _error(503, "the message could not be stored now (database unavailable); please retry")
    response["Retry-After"] = "5"
    return response


def guarded(handle: Callable[[], HttpResponse]) -> HttpResponse:
    """Run ``handle`` (one webhook) within the database's budget for webhooks: a connection had
    within ``PARLEY_WEBHOOK_DB_WAIT`` seconds, else 503 at once; while the database is known to be
    away (``breaker.database``), 503 without trying. Other errors are left to the caller."""
    if breaker.database.is_open():
        return database_unavailable()
    try:
        with connect_within(settings.PARLEY_WEBHOOK_DB_WAIT):
            return handle()
    except (OperationalError, InterfaceError) as exc:
        breaker.database.trip(exc)
        check_pools()  # dead idle connections out, so the platform's retry finds a live one
        logger.warning("webhook refused: the database is unavailable (%s: %s)", type(exc).__name__, exc)
        return database_unavailable()


@csrf_exempt
def webhook(request: HttpRequest, platform: str, key: str) -> HttpResponse:
    """The Django view (WSGI, the test client); under ASGI the webhook lane serves the same URL."""
    return guarded(lambda: handle_webhook(request, platform, key))
