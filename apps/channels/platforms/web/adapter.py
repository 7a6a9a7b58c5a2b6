"""The "web" platform: Parley's own embeddable chat (``/widget.js`` + the ``/ws/chat/<key>/`` socket).

There is no webhook: visitors' messages arrive through the web-chat consumer (``consumer.py`` in
this folder), which reads each with this adapter's ``parse`` and stores it through
``conversation_port.accept`` like any other platform's. The folder holds the rest of the web chat
too: the visitor token (``visitor.py``), the token endpoint, ``/widget.js`` and the chat page
(``views.py``, ``urls.py``).
Replies go the other way through the channel layer: ``send`` and ``token_sink`` publish JSON frames
to the group of the visitor's conversation, and every socket of that visitor (one per open tab, on
any web replica) forwards them. On channels-redis this works from a Celery worker on another machine.

Group name: ``webchat.<channel pk>.<chat id>`` where the chat id is the conversation id carried in the
visitor's signed token (``Target.chat_id``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ..base import (
    Inbound,
    MalformedRequest,
    OutboundReply,
    PlatformAdapter,
    PlatformError,
    RawRequest,
    SentRef,
    Target,
    WebhookRejected,
)

logger = logging.getLogger(__name__)

#: The chat ids Parley issues to visitors (uuid4 hex). Anything else never names a group.
CHAT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
#: The consumer method that forwards a published frame to its socket (``webchat.frame`` → ``webchat_frame``).
FRAME_EVENT = "webchat.frame"
#: Streamed text is published at most this often (seconds) so a fast model does not send one
#: channel-layer message per token; the final ``message`` frame always carries the whole answer.
TOKEN_FLUSH_INTERVAL = 0.05
TOKEN_FLUSH_CHARS = 400
PUBLISH_TIMEOUT = 10.0


def group_name(channel_id: int, chat_id: str) -> str:
    """The channel-layer group of one web-chat conversation. Raises ``ValueError`` for a chat id
    Parley did not issue (group names must stay short and ASCII)."""
    if not CHAT_ID_RE.match(chat_id or ""):
        raise ValueError("not a web-chat conversation id")
    return f"webchat.{int(channel_id)}.{chat_id}"


def frame_id(reply: OutboundReply) -> str:
    """The id the widget shows and rates an answer by: the pipeline's idempotency key
    (``parley-<Message pk>``), which history frames use too."""
    return reply.idempotency_key or f"parley-{uuid.uuid4().hex}"


_server_loop: asyncio.AbstractEventLoop | None = None


def register_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the web-chat consumer: the event loop that serves sockets in this process."""
    global _server_loop
    _server_loop = loop


def _group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    loop = _server_loop
    try:
        on_that_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
        on_that_loop = False
    if loop is not None and loop.is_running() and not on_that_loop:
        # In the process that serves the sockets (the embedded default runs the pipeline on an
        # in-process thread pool), hand the send to the server's own loop: the in-memory channel
        # layer's queues belong to that loop and are not safe to touch from another one.
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=PUBLISH_TIMEOUT)
        return
    # A Celery worker (no sockets here): a short-lived loop per call; channels-redis handles that.
    async_to_sync(layer.group_send)(group, message)


def publish(channel: Any, target: Target, frame: dict[str, Any]) -> None:
    """Send ``frame`` to every socket of the conversation in ``target``. Sync: for workers and the
    pipeline (not for code already running on an event loop). Raises ``PlatformError``."""
    try:
        group = group_name(channel.pk, target.chat_id)
    except ValueError as exc:
        raise PlatformError(str(exc), permanent=True) from exc
    layer = get_channel_layer()
    if layer is None:
        raise PlatformError("no channel layer is configured", permanent=True)
    try:
        _group_send(layer, group, {"type": FRAME_EVENT, "frame": frame})
    except Exception as exc:  # Redis down, connection reset, timeout: a retry can help
        raise PlatformError(f"channel layer publish failed: {exc.__class__.__name__}", permanent=False) from exc


class TokenSink:
    """Receives answer text as the model writes it and publishes ``token`` frames, coalescing pieces
    that arrive within ``TOKEN_FLUSH_INTERVAL``. Publishing is best effort: a failure is logged and
    streaming stops, the answer itself still arrives through ``send``."""

    def __init__(self, channel: Any, target: Target, reply_ref: str) -> None:
        self.channel = channel
        self.target = target
        self.reply_ref = reply_ref
        self.reply_to = str(target.reply_context.get("reply_to", ""))
        self._buffer: list[str] = []
        self._buffered = 0
        self._last_flush = 0.0
        self._broken = False

    def __call__(self, text: str) -> None:
        if self._broken or not text:
            return
        self._buffer.append(text)
        self._buffered += len(text)
        now = time.monotonic()
        due = now - self._last_flush >= TOKEN_FLUSH_INTERVAL or self._buffered >= TOKEN_FLUSH_CHARS
        if self._last_flush == 0.0 or due:  # the first piece goes at once: the visitor sees the answer start
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Publish what is buffered now (the pipeline may call this when the model finishes)."""
        if self._broken or not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        self._last_flush = time.monotonic() if now is None else now
        frame = {"type": "token", "reply_ref": self.reply_ref, "reply_to": self.reply_to, "text": text}
        try:
            publish(self.channel, self.target, frame)
        except PlatformError as exc:
            self._broken = True
            logger.warning("web chat token streaming stopped: %s", exc)


class WebAdapter(PlatformAdapter):
    platform: ClassVar[str] = "web"

    def verify(self, request: RawRequest, channel: Any) -> None:
        raise WebhookRejected(404, "the web chat has no webhook")

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        """The message in a visitor's ``message`` frame (``{type, id, text}``, checked by the
        consumer), from the socket whose visitor is in ``request.state["visitor"]``. A request
        without a visitor came by some other way: the web chat has no webhook."""
        visitor = request.state.get("visitor")
        if visitor is None:
            raise WebhookRejected(404, "the web chat has no webhook")
        try:
            frame = json.loads(request.body)
        except ValueError as exc:
            raise MalformedRequest("a frame that is not JSON") from exc
        if not isinstance(frame, dict) or frame.get("type") != "message":
            return []
        client_id, text = frame.get("id"), frame.get("text")
        if not isinstance(client_id, str) or not isinstance(text, str):
            raise MalformedRequest("a message needs an id and a text")
        return [
            Inbound(
                message_id=f"{visitor.visitor_id}:{client_id}",
                chat_id=visitor.chat_id,
                user_id=visitor.visitor_id,
                text=text,
                raw={"type": "message", "id": client_id},
                reply_context={"reply_to": client_id},
            )
        ]

    def render(self, markdown: str) -> str:
        # The widget renders Markdown itself (safely, into DOM nodes), as it must for streamed text.
        return markdown

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """Publish the finished answer as a ``message`` frame. Raises ``PlatformError`` (not permanent)
        when the channel layer cannot be reached; an answer nobody is connected to receive is not an
        error — the visitor's next connection gets it in the ``history`` frame."""
        frame = {
            "type": "message",
            "id": frame_id(reply),
            "text": self.render(reply.markdown),
            "feedback_url": reply.feedback_url,
            "reply_to": str(target.reply_context.get("reply_to", "")),
        }
        publish(channel, target, frame)
        return SentRef(platform_message_id=frame["id"])

    def token_sink(self, channel: Any, target: Target, *, reply_ref: str) -> Callable[[str], None] | None:
        """A ``TokenSink`` publishing ``token`` frames ``{type, reply_ref, reply_to, text}`` (``text`` is
        the new piece, to append)."""
        return TokenSink(channel, target, reply_ref)

    def status_sink(self, channel: Any, target: Target) -> Callable[[str], None] | None:
        """Publishes ``status`` frames ``{type, reply_to, text}``: the widget shows the text beside its
        typing dots until the answer comes."""
        reply_to = str(target.reply_context.get("reply_to", ""))

        def show(text: str) -> None:
            publish(channel, target, {"type": "status", "reply_to": reply_to, "text": text[:200]})

        return show

    def send_test_message(self, channel: Any, target: Target) -> SentRef:
        return self.send(channel, target, OutboundReply(markdown="**Parley** test message ✅"))
