"""HTTP side of the web chat: the visitor token endpoint, ``/widget.js`` and the ``/chat/<key>/`` page."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from apps.core import ratelimit

from . import services
from .texts import widget_texts
from .visitor import visitor_token_issue

WIDGET_PATH = Path(settings.BASE_DIR) / "static" / "parley" / "widget.js"
MAX_TOKEN_REQUEST_BYTES = 8 * 1024


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Vary"] = "Origin"
    if origin:
        response["Access-Control-Allow-Origin"] = origin
    return response


@csrf_exempt  # cross-origin by design, no cookies involved: the origin check below is the guard
def token(request: HttpRequest, key: str) -> HttpResponse:
    """``POST /api/v1/webchat/<key>/token`` → ``{token, expires_at, visitor_id, conversation_id,
    continued, ws_path, protocol, max_chars, bot: {name, greeting}}``.

    Body (JSON, optional): ``{"token": "<earlier token>", "new_conversation": false}`` — an earlier
    token keeps the visitor and conversation (see ``visitor_token_issue``). 403 for an Origin the
    channel does not allow, 404 for an unknown or disabled channel, 400 for a body that is not a
    JSON object, 413 for a body over 8 KiB, 429 (with Retry-After) past ``WEBCHAT_TOKENS_PER_MINUTE``
    per client address. A request without an Origin (not from a browser) is served.
    """
    origin = request.headers.get("Origin", "")
    channel = services.webchat_channel(key=key)
    if channel is None:
        return _error(404, "unknown or disabled chat")
    if origin and not services.origin_allowed(channel, origin=origin, host=request.get_host()):
        return _error(403, "this site may not use this chat")
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        return _cors(response, origin)
    if request.method != "POST":
        return _cors(_error(405, "use POST"), origin)
    # Per client address (uvicorn puts the real one there behind a trusted proxy). Tokens cost no
    # storage, but a script minting identities in bulk is refused all the same.
    decision = ratelimit.hit(
        "webchat_token",
        request.META.get("REMOTE_ADDR", "") or "unknown",
        limit=settings.WEBCHAT_TOKENS_PER_MINUTE,
        window_seconds=60,
    )
    if not decision.allowed:
        response = _error(429, "too many token requests; try again shortly")
        response["Retry-After"] = str(max(1, int(decision.retry_after) + 1))
        return _cors(response, origin)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _cors(_error(400, "invalid Content-Length"), origin)
    if declared > MAX_TOKEN_REQUEST_BYTES:
        return _cors(_error(413, "request body too large"), origin)
    try:
        raw = request.body
    except RequestDataTooBig:
        return _cors(_error(413, "request body too large"), origin)
    body: object = {}
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return _cors(_error(400, "body must be a JSON object"), origin)
    previous = body.get("token") if isinstance(body.get("token"), str) else ""
    issued = visitor_token_issue(
        channel=channel, previous=previous[:4096], new_conversation=body.get("new_conversation") is True
    )
    response = JsonResponse(
        {
            "token": issued.token,
            "expires_at": issued.expires_at,
            "visitor_id": issued.visitor.visitor_id,
            "conversation_id": issued.visitor.chat_id,
            "continued": issued.continued,
            "ws_path": f"/ws/chat/{channel.key}/",
            "protocol": "parley.v1",
            "max_chars": services.max_message_chars(),
            "bot": {"name": channel.bot.name, "greeting": channel.bot.greeting},
        }
    )
    response["Cache-Control"] = "no-store"
    return _cors(response, origin)


@lru_cache(maxsize=8)
def _widget_source(mtime: float, language: str) -> tuple[bytes, str]:
    """The script with its texts in ``language`` (one copy per file version and language)."""
    source = WIDGET_PATH.read_text(encoding="utf-8")
    data = source.replace("{} /*PARLEY_TEXTS*/", widget_texts(language), 1).encode()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    """``/widget.js``: the embeddable chat script (see ``static/parley/widget.js``), its texts in
    the visitor's language (the browser's Accept-Language, through LocaleMiddleware)."""
    data, etag = _widget_source(WIDGET_PATH.stat().st_mtime, translation.get_language() or "en")
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(data, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    # Short: a new Parley release reaches every embedding page within minutes.
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    patch_vary_headers(response, ["Accept-Language"])
    return response


@require_GET
@xframe_options_exempt
def chat_page(request: HttpRequest, key: str) -> HttpResponse:
    """``/chat/<key>/``: a page of its own with the chat open, to link to, or to embed in an iframe
    on the channel's allowed origins (``frame-ancestors``; same origin only when none are listed)."""
    channel = services.webchat_channel(key=key)
    if channel is None:
        raise Http404("unknown or disabled chat")
    response = render(request, "webchat/chat.html", {"channel": channel, "bot": channel.bot})
    origins = channel.origin_list()
    ancestors = "*" if "*" in origins else " ".join(["'self'", *origins])
    response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response
