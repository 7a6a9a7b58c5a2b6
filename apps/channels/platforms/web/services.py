"""Web-chat services: the channel lookup, origin checks, the sockets' database threads, and the
visitor's messages, history and ratings (handed to the conversations through
``apps.channels.conversation_port``, as every platform's messages are).

The consumer and the views stay thin and call these. Everything here is synchronous except
``run_db`` and ``socket_channel``, which the consumer uses to do its database work off the event loop.

Socket database work runs on a small pool of long-lived threads of its own (``WEBCHAT_DB_THREADS``,
default 4), not on the process's single thread-sensitive executor: a burst of handshakes is served
that many at a time instead of one at a time, and the pool also bounds how many database connections
the sockets of one process hold at once.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from apps.channels import conversation_port
from apps.channels.conversation_port import AnswerNotFound
from apps.channels.models import Channel
from apps.channels.platforms.base import RawRequest
from apps.channels.platforms.registry import get_adapter
from apps.channels.services import channel_lookups
from apps.core.threads import LazyPool

from .visitor import Visitor

#: Client message ids (uuids made by the widget): short, URL- and log-safe.
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HISTORY_LIMIT = 50
#: The thumbs a visitor may give an answer.
THUMBS = ("up", "down")

__all__ = ["AnswerNotFound"]


def max_message_chars() -> int:
    """Longest message text a visitor may send (``WEBCHAT_MAX_MESSAGE_CHARS``, default 4000)."""
    return settings.WEBCHAT_MAX_MESSAGE_CHARS


def webchat_channel(*, key: str) -> Channel | None:
    """The enabled web-chat channel with this key whose bot and tenant are enabled, or None (the
    process's shared channel lookups: ``apps.channels.services.ChannelLookups``)."""
    return channel_lookups.get(Channel.Platform.WEB, key)


_R = TypeVar("_R")
_db_pool = LazyPool("webchat-db", lambda: settings.WEBCHAT_DB_THREADS)


def db_executor() -> ThreadPoolExecutor:
    """The process's pool of threads for web-chat socket database work (made on first use)."""
    return _db_pool.get()


def _closing(func: Callable[..., _R], kwargs: dict[str, Any]) -> _R:
    # Like channels' database_sync_to_async: the thread's connection is closed (with the pool:
    # handed back) before and after, so an idle thread holds none and a broken one is not reused.
    close_old_connections()
    try:
        return func(**kwargs)
    finally:
        close_old_connections()


async def run_db(func: Callable[..., _R], /, **kwargs: Any) -> _R:
    """Run the synchronous ``func(**kwargs)`` on the web-chat database threads."""
    return await sync_to_async(_closing, thread_sensitive=False, executor=db_executor())(func, kwargs)


class SocketChannels:
    """``webchat_channel`` for socket handshakes: a remembered lookup is answered on the event loop,
    and concurrent handshakes for a key that is not remembered wait for one shared lookup on the
    web-chat database threads."""

    def __init__(self) -> None:
        self._loading: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Task[Channel | None]] = {}

    async def get(self, key: str) -> Channel | None:
        found, channel = channel_lookups.peek(Channel.Platform.WEB, key)
        if found:
            return channel
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        task = self._loading.get(slot)
        if task is None:
            task = loop.create_task(run_db(webchat_channel, key=key))
            self._loading[slot] = task
            task.add_done_callback(lambda done: self._loaded(slot, done))
        # Shielded: a visitor who gives up does not cancel the lookup the others are waiting for.
        return await asyncio.shield(task)

    def _loaded(self, slot: tuple[asyncio.AbstractEventLoop, str], task: asyncio.Task[Channel | None]) -> None:
        if self._loading.get(slot) is task:
            del self._loading[slot]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter has gone


socket_channels = SocketChannels()


async def socket_channel(key: str) -> Channel | None:
    """The enabled web-chat channel with this key (see ``webchat_channel``), for a socket handshake."""
    return await socket_channels.get(key)


def _netloc(url: str) -> str:
    try:
        return (urlsplit(url).netloc or "").lower()
    except ValueError:
        return ""


def origin_allowed(channel: Channel, *, origin: str, host: str) -> bool:
    """Whether a page at ``origin`` (the browser's Origin header) may use this channel.

    ``Channel.allowed_origins``: one origin per line (``https://shop.example.com``), or ``*`` for any.
    Empty: same origin only — the origin's host:port is the request's Host or that of PUBLIC_BASE_URL.
    A missing or opaque ("null") origin is refused unless ``*`` is listed.
    """
    allowed = [o.lower() for o in channel.origin_list()]
    if "*" in allowed:
        return True
    origin = (origin or "").strip().rstrip("/").lower()
    if not origin or origin == "null":
        return False
    if allowed:
        return origin in allowed
    netloc = _netloc(origin)
    return bool(netloc) and netloc in {(host or "").lower(), _netloc(settings.PUBLIC_BASE_URL)}


def message_accept(*, channel: Channel, visitor: Visitor, client_id: str, text: str, trace_id: str = "") -> bool:
    """Store a visitor's message and queue it for the pipeline, by the path every platform's
    messages take: the web adapter's ``parse``, then ``conversation_port.accept``. The platform
    message id is ``<visitor id>:<client id>``, so a message re-sent after a reconnect is accepted
    once and one visitor cannot collide with another's ids. Returns False for a duplicate."""
    request = RawRequest.event(json.dumps({"type": "message", "id": client_id, "text": text}).encode())
    request.state["visitor"] = visitor
    inbounds = get_adapter("web").parse(request, channel)
    return bool(conversation_port.accept(channel=channel, inbounds=inbounds, trace_id=trace_id))


def _client_id(platform_message_id: str) -> str:
    return platform_message_id.partition(":")[2] or platform_message_id


def _thumb(rating: int | None) -> str | None:
    if rating is None:
        return None
    return "up" if rating >= 4 else "down" if rating <= 2 else None


def history_for(*, channel: Channel, visitor: Visitor, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The visitor's latest ``limit`` turns in this chat, oldest first, as widget frames:
    ``{id, role, text, reply_to, rating}`` (``rating`` "up"/"down"/None on answers). Messages still
    waiting for the pipeline are included as user turns so a reload does not hide them."""
    turns = conversation_port.chat_history(
        channel=channel, chat_id=visitor.chat_id, user_id=visitor.visitor_id, limit=limit
    )
    frames: list[dict[str, Any]] = []
    for turn in turns:
        client_id = _client_id(turn["platform_message_id"]) if turn["platform_message_id"] else ""
        if turn["role"] == "user":
            frames.append(
                {"id": client_id or f"m{turn['message_id']}", "role": "user", "text": turn["text"], "reply_to": ""}
            )
        else:
            frames.append(
                {
                    "id": f"parley-{turn['message_id']}",
                    "role": "assistant",
                    "text": turn["text"],
                    "reply_to": client_id,
                    "rating": _thumb(turn["rating"]),
                }
            )
    return frames


def feedback_record(*, channel: Channel, visitor: Visitor, message_ref: str, rating: str) -> Any:
    """Store a thumbs rating (up = 5, down = 1, source "button") on one of the visitor's answers,
    replacing an earlier rating of it. ``message_ref`` is the answer's frame id (``parley-<pk>``).
    Raises ``ValueError`` for a rating other than "up"/"down" and ``AnswerNotFound`` for an answer
    that is not this visitor's."""
    if rating not in THUMBS:
        raise ValueError("rating must be 'up' or 'down'")
    match = re.fullmatch(r"(?:parley-)?(\d{1,18})", message_ref or "")
    if match is None:
        raise AnswerNotFound("unknown message")
    return conversation_port.record_chat_rating(
        channel=channel,
        chat_id=visitor.chat_id,
        user_id=visitor.visitor_id,
        message_id=int(match.group(1)),
        thumb=rating,
    )
