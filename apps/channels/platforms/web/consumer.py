"""The web-chat socket: ``/ws/chat/<channel key>/``.

Handshake: the page's Origin must be allowed for the channel (else the upgrade is refused with 403),
and the visitor's token travels as a WebSocket subprotocol (``parley.auth.<token>`` next to
``parley.v1``) so it never appears in URLs or access logs. A missing, expired or foreign token gets an
``error`` frame (code ``unauthorized``) and close code 4401, which tells the widget to fetch a new one.

Frames are JSON objects; see ``docs/webchat.md``. Every bad frame is answered with an ``error``
frame and the socket stays open, except a sustained flood, which is closed with 4429.

A handshake costs one shared, short-lived channel lookup (``services.socket_channel``) and one
history read; database work runs on the web chat's own thread pool (``services.run_db``), so many
visitors connect at once. What a socket keeps while idle is small: the channel (shared by every
socket opened from the same lookup), the visitor, its group name and a flood guard.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation.trans_real import parse_accept_lang_header

from apps.core import metrics
from apps.core.i18n import text_in
from apps.core.logging import log_context

from . import services
from .adapter import FRAME_EVENT, group_name, register_server_loop
from .visitor import InvalidVisitorToken, Visitor, visitor_token_verify

logger = logging.getLogger(__name__)

PROTOCOL = "parley.v1"
TOKEN_PREFIX = "parley.auth."
CLOSE_UNAUTHORIZED = 4401
CLOSE_FLOOD = 4429


class FloodGuard:
    """Per-socket token bucket: ``burst`` frames at once, refilled at ``rate`` per second. Kept in
    the consumer (not the cache) because a socket lives in one process; the pipeline's own per-user
    and per-bot limits still apply to the messages that get through."""

    __slots__ = ("burst", "rate", "stamp", "strikes", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.strikes = 0

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.strikes = 0
            return True
        self.strikes += 1
        return False


class ChatConsumer(AsyncWebsocketConsumer):
    channel_obj: Any = None
    visitor: Visitor | None = None
    _visitor_language: str | None = None
    group: str = ""

    def _header(self, name: bytes) -> str:
        for key, value in self.scope.get("headers", []):
            if key == name:
                return value.decode("latin-1")
        return ""

    async def connect(self) -> None:
        register_server_loop(asyncio.get_running_loop())
        key = self.scope["url_route"]["kwargs"]["key"]
        self.channel_obj = await services.socket_channel(key)
        if self.channel_obj is None:
            await self.close()  # before accept: the upgrade is answered with 403
            return
        if not services.origin_allowed(self.channel_obj, origin=self._header(b"origin"), host=self._header(b"host")):
            logger.info("web chat socket refused: origin not allowed", extra={"channel": key})
            await self.close()
            return
        offered = list(self.scope.get("subprotocols") or [])
        token = next((p[len(TOKEN_PREFIX) :] for p in offered if p.startswith(TOKEN_PREFIX)), "")
        await self.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
        try:
            self.visitor = visitor_token_verify(channel_key=key, token=token)
        except InvalidVisitorToken:
            await self.error("unauthorized", _("Sign-in token missing or expired."))
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.group = group_name(self.channel_obj.pk, self.visitor.chat_id)
        self.flood = FloodGuard(rate=settings.WEBCHAT_FRAMES_PER_SECOND, burst=settings.WEBCHAT_FRAME_BURST)
        await self.channel_layer.group_add(self.group, self.channel_name)
        metrics.WEBCHAT_SOCKETS.inc()
        history = await services.run_db(services.history_for, channel=self.channel_obj, visitor=self.visitor)
        await self.send_frame({"type": "history", "messages": history})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first closes the old database connections of the process's single
        # thread-sensitive thread, i.e. one hop to that thread per event (handshake, frame, published
        # frame) of every socket. This consumer never uses that thread: its database work runs on
        # ``services.run_db``, which closes its own connections. So the hop is left out.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # As Channels' version, less the connection-closing hop (see ``dispatch``); ``self.groups``
        # is unused here (the conversation's group is left in ``disconnect``).
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            metrics.WEBCHAT_SOCKETS.dec()
            self.group = ""

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def error(self, code: str, message: Any, **extra: Any) -> None:
        """An error frame; ``message`` (a lazy text, shown by the widget) in the visitor's browser
        language (the handshake's Accept-Language, as /widget.js)."""
        text = text_in(self._language(), message, **extra.pop("fields", {}))
        await self.send_frame({"type": "error", "code": code, "message": text, **extra})

    def _language(self) -> str:
        if self._visitor_language is None:
            accepted = parse_accept_lang_header(self._header(b"accept-language") or "")
            first = accepted[0][0].lower() if accepted else ""
            self._visitor_language = "zh" if first.startswith("zh") else "en"
        return self._visitor_language

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.visitor is None:
            return
        if not self.flood.allow():
            metrics.INBOUND_MESSAGES.labels("web", "rate_limited").inc()
            if self.flood.strikes >= settings.WEBCHAT_FLOOD_STRIKES:
                await self.error("rate_limited", _("Too many messages at once; the connection is closed."))
                await self.close(code=CLOSE_FLOOD)
            elif self.flood.strikes == 1 or self.flood.strikes % 5 == 0:
                # Not one error per dropped frame: a flood must not turn into a flood back.
                await self.error("rate_limited", _("Slow down: messages are being sent too fast."))
            return
        if text_data is None:
            await self.error("bad_frame", "Frames must be JSON text.")
            return
        if len(text_data) > settings.WEBCHAT_MAX_FRAME_BYTES:
            await self.error("frame_too_large", "That frame is too large.")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.error("bad_frame", "Frames must be JSON objects with a 'type'.")
            return
        handler = {"message": self.on_message, "feedback": self.on_feedback, "ping": self.on_ping}.get(frame["type"])
        if handler is None:
            await self.error("unknown_type", f"Unknown frame type '{frame['type'][:32]}'.")
            return
        trace_id = uuid.uuid4().hex
        with log_context(
            tenant=self.channel_obj.bot.tenant.slug, bot=self.channel_obj.bot.slug, platform="web", trace_id=trace_id
        ):
            try:
                await handler(frame, trace_id)
            except Exception:
                logger.exception("web chat frame failed")
                await self.error("server_error", _("Something went wrong; please try again."))

    async def on_ping(self, frame: dict[str, Any], trace_id: str) -> None:
        await self.send_frame({"type": "pong"})

    async def on_message(self, frame: dict[str, Any], trace_id: str) -> None:
        client_id, text = frame.get("id"), frame.get("text")
        if not isinstance(client_id, str) or not services.CLIENT_ID_RE.match(client_id):
            await self.error("bad_frame", "A message needs an 'id' of 1–64 letters, digits, '-' or '_'.")
            return
        if not isinstance(text, str) or not text.strip():
            await self.error("empty_message", _("The message is empty."), id=client_id)
            return
        limit = services.max_message_chars()
        if len(text) > limit:
            metrics.INBOUND_MESSAGES.labels("web", "rejected").inc()
            too_long = _("Messages can be at most {limit} characters.")
            await self.error("message_too_long", too_long, id=client_id, fields={"limit": limit})
            return
        # Typing goes out before the message is stored: every tab of the visitor shows it, and it can
        # never arrive after an answer that a fast pipeline already produced.
        await self.channel_layer.group_send(self.group, {"type": FRAME_EVENT, "frame": {"type": "typing"}})
        new = await services.run_db(
            services.message_accept,
            channel=self.channel_obj,
            visitor=self.visitor,
            client_id=client_id,
            text=text.strip(),
            trace_id=trace_id,
        )
        await self.send_frame({"type": "ack", "id": client_id, "duplicate": not new})

    async def on_feedback(self, frame: dict[str, Any], trace_id: str) -> None:
        message_ref, rating = frame.get("message_id"), frame.get("rating")
        if not isinstance(message_ref, str) or rating not in services.THUMBS:
            await self.error("bad_frame", "Feedback needs a 'message_id' and a 'rating' of 'up' or 'down'.")
            return
        try:
            await services.run_db(
                services.feedback_record,
                channel=self.channel_obj,
                visitor=self.visitor,
                message_ref=message_ref,
                rating=rating,
            )
        except services.AnswerNotFound:
            await self.error("not_found", _("That answer cannot be rated."), id=message_ref)
            return
        await self.send_frame({"type": "ack", "id": message_ref, "rating": rating})

    async def webchat_frame(self, event: dict[str, Any]) -> None:
        """A frame published to this conversation's group (by the web adapter or another socket)."""
        await self.send_frame(event["frame"])
