"""Web-chat services: visitor identity tokens, origin checks, storing messages, history, feedback.

The consumer and the views stay thin and call these. Everything here is synchronous except
``run_db`` and ``socket_channel``, which the consumer uses to do its database work off the event loop.

Socket database work runs on a small pool of long-lived threads of its own (``WEBCHAT_DB_THREADS``,
default 4), not on the process's single thread-sensitive executor: a burst of handshakes is served
that many at a time instead of one at a time, and the pool also bounds how many database connections
the sockets of one process hold at once.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token

from apps.channels.models import Channel
from apps.channels.platforms.base import Inbound
from apps.channels.services import channel_lookups
from apps.core.threads import LazyPool

#: Client message ids (uuids made by the widget): short, URL- and log-safe.
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
HISTORY_LIMIT = 50


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def token_lifetime() -> timedelta:
    """How long a visitor token opens sockets (``WEBCHAT_TOKEN_SECONDS``, default 12 h)."""
    return timedelta(seconds=int(_setting("WEBCHAT_TOKEN_SECONDS", 12 * 3600)))


def refresh_window() -> timedelta:
    """How long after expiry a token may still be exchanged for a new one of the same visitor and
    conversation (``WEBCHAT_REFRESH_SECONDS``, default 30 days): a returning visitor keeps the chat."""
    return timedelta(seconds=int(_setting("WEBCHAT_REFRESH_SECONDS", 30 * 24 * 3600)))


def max_message_chars() -> int:
    """Longest message text a visitor may send (``WEBCHAT_MAX_MESSAGE_CHARS``, default 4000)."""
    return int(_setting("WEBCHAT_MAX_MESSAGE_CHARS", 4000))


class InvalidVisitorToken(Exception):
    """The token is missing, altered, expired, of another type, or for another channel."""


class VisitorToken(Token):
    """A simplejwt token (HS256 with the project's signing key) naming a web-chat visitor.

    Claims: ``token_type`` "webchat" (so it is never accepted as an API access token, nor an
    access token as this), ``ch`` channel key, ``vid`` visitor id, ``cid`` conversation (chat) id.
    """

    token_type = "webchat"
    lifetime = timedelta(hours=12)
    #: Extra time past ``exp`` that still verifies; only set on the refresh path.
    grace = timedelta(0)

    def get_token_backend(self) -> TokenBackend:
        backend = super().get_token_backend()
        if not self.grace:
            return backend
        return TokenBackend(
            backend.algorithm,
            backend.signing_key,
            backend.verifying_key,
            backend.audience,
            backend.issuer,
            leeway=backend.get_leeway() + self.grace,
            json_encoder=backend.json_encoder,
        )

    def check_exp(self, claim: str = "exp", current_time: Any = None) -> None:
        super().check_exp(claim, (current_time or self.current_time) - self.grace)


class _RefreshableToken(VisitorToken):
    @property
    def grace(self) -> timedelta:  # type: ignore[override]
        return refresh_window()


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is on a socket: the channel key, the visitor id and the conversation (chat) id."""

    channel_key: str
    visitor_id: str
    chat_id: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    visitor: Visitor
    expires_at: int  # Unix time
    continued: bool  # True when an earlier token's visitor and conversation were kept


def _visitor_from(token: Token, channel_key: str) -> Visitor:
    vid, cid, key = token.get("vid", ""), token.get("cid", ""), token.get("ch", "")
    if key != channel_key or not HEX32_RE.match(str(vid)) or not HEX32_RE.match(str(cid)):
        raise InvalidVisitorToken("token is not for this chat")
    return Visitor(channel_key=key, visitor_id=vid, chat_id=cid)


def visitor_token_verify(*, channel_key: str, token: str) -> Visitor:
    """The visitor a current (unexpired) token names. Raises ``InvalidVisitorToken``."""
    if not token:
        raise InvalidVisitorToken("no token")
    try:
        parsed = VisitorToken(token)  # type: ignore[arg-type]
    except TokenError as exc:
        raise InvalidVisitorToken(str(exc)) from exc
    return _visitor_from(parsed, channel_key)


def visitor_token_issue(*, channel: Channel, previous: str = "", new_conversation: bool = False) -> IssuedToken:
    """A fresh token for ``channel``. When ``previous`` is an authentic token of this channel that
    expired less than ``refresh_window()`` ago (or has not expired), the new token keeps its visitor
    id — and its conversation id unless ``new_conversation``. Anything else in ``previous`` is
    ignored and a new visitor is made. Never raises for bad input."""
    visitor: Visitor | None = None
    if previous:
        try:
            visitor = _visitor_from(_RefreshableToken(previous), channel.key)  # type: ignore[arg-type]
        except (TokenError, InvalidVisitorToken):
            visitor = None
    continued = visitor is not None and not new_conversation
    token = VisitorToken()
    token.set_exp(lifetime=token_lifetime())
    token["ch"] = channel.key
    token["vid"] = visitor.visitor_id if visitor else uuid.uuid4().hex
    token["cid"] = visitor.chat_id if continued and visitor else uuid.uuid4().hex
    return IssuedToken(
        token=str(token),
        visitor=Visitor(channel_key=channel.key, visitor_id=token["vid"], chat_id=token["cid"]),
        expires_at=int(token["exp"]),
        continued=continued,
    )


def webchat_channel(*, key: str) -> Channel | None:
    """The enabled web-chat channel with this key whose bot and tenant are enabled, or None (the
    process's shared channel lookups: ``apps.channels.services.ChannelLookups``)."""
    return channel_lookups.get(Channel.Platform.WEB, key)


_R = TypeVar("_R")
_db_pool = LazyPool("webchat-db", lambda: int(_setting("WEBCHAT_DB_THREADS", 4)))


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
    """Store a visitor's message and queue it for the pipeline (``accept_inbound``). The
    platform message id is ``<visitor id>:<client id>``, so a message re-sent after a reconnect is
    accepted once and one visitor cannot collide with another's ids. Returns False for a duplicate."""
    from apps.conversations.services import accept_inbound

    inbound = Inbound(
        message_id=f"{visitor.visitor_id}:{client_id}",
        chat_id=visitor.chat_id,
        user_id=visitor.visitor_id,
        text=text,
        raw={"type": "message", "id": client_id},
        reply_context={"reply_to": client_id},
    )
    return bool(accept_inbound(channel=channel, inbounds=[inbound], trace_id=trace_id))


def _client_id(platform_message_id: str) -> str:
    return platform_message_id.partition(":")[2] or platform_message_id


def _thumb(rating: int | None) -> str | None:
    if rating is None:
        return None
    return "up" if rating >= 4 else "down" if rating <= 2 else None


@lru_cache(maxsize=4)
def _history_probe_sql(vendor: str) -> str:
    from apps.conversations.models import Conversation, InboundMessage

    q = connection.ops.quote_name

    def rows_of(model: Any, *, pending: bool = False) -> str:
        column = {name: q(model._meta.get_field(name).column) for name in ("channel", "chat_id", "user_id", "status")}
        where = f"{column['channel']} = %s AND {column['chat_id']} = %s AND {column['user_id']} = %s"
        if pending:
            where += f" AND {column['status']} IN (%s, %s)"
        return f"SELECT 1 FROM {q(model._meta.db_table)} WHERE {where}"  # noqa: S608 - names from the models

    return f"SELECT 1 WHERE EXISTS ({rows_of(Conversation)}) OR EXISTS ({rows_of(InboundMessage, pending=True)})"


def _has_history(*, channel: Channel, visitor: Visitor) -> bool:
    """Whether the visitor has a conversation in this chat or a message waiting for the pipeline:
    without either there is no history. One small query, written out in SQL because building it
    with the ORM costs several times the CPU of running it, and most of a burst of handshakes are
    first visits that stop here."""
    from apps.conversations.models import InboundMessage

    who = [channel.pk, visitor.chat_id, visitor.visitor_id]
    pending = [InboundMessage.Status.RECEIVED.value, InboundMessage.Status.PROCESSING.value]
    with connection.cursor() as cursor:
        cursor.execute(_history_probe_sql(connection.vendor), [*who, *who, *pending])
        return cursor.fetchone() is not None


def history_for(*, channel: Channel, visitor: Visitor, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The visitor's latest ``limit`` turns in this chat, oldest first, as widget frames:
    ``{id, role, text, reply_to, rating}`` (``rating`` "up"/"down"/None on answers). Messages still
    waiting for the pipeline are included as user turns so a reload does not hide them."""
    from apps.conversations.models import Feedback, InboundMessage, Message

    if not _has_history(channel=channel, visitor=visitor):
        return []
    turns = list(
        Message.objects.filter(
            conversation__channel=channel,
            conversation__chat_id=visitor.chat_id,
            conversation__user_id=visitor.visitor_id,
            role__in=[Message.Role.USER, Message.Role.ASSISTANT],
        )
        .select_related("inbound")
        .order_by("-created_at", "-id")[:limit]
    )
    turns.reverse()
    ratings = dict(
        Feedback.objects.filter(message__in=[m for m in turns if m.role == Message.Role.ASSISTANT]).values_list(
            "message_id", "rating"
        )
    )
    frames: list[dict[str, Any]] = []
    seen_inbound: set[int] = set()
    for m in turns:
        reply_to = _client_id(m.inbound.platform_message_id) if m.inbound else ""
        if m.role == Message.Role.USER:
            if m.inbound_id:
                seen_inbound.add(m.inbound_id)
            frames.append({"id": reply_to or f"m{m.pk}", "role": "user", "text": m.text, "reply_to": ""})
        else:
            frames.append(
                {
                    "id": f"parley-{m.pk}",
                    "role": "assistant",
                    "text": m.text,
                    "reply_to": reply_to,
                    "rating": _thumb(ratings.get(m.pk)),
                }
            )
    pending = InboundMessage.objects.filter(
        channel=channel,
        chat_id=visitor.chat_id,
        user_id=visitor.visitor_id,
        status__in=[InboundMessage.Status.RECEIVED, InboundMessage.Status.PROCESSING],
    ).order_by("received_at", "id")[:limit]
    for row in pending:
        if row.pk not in seen_inbound and not row.messages.filter(role=Message.Role.USER).exists():
            frames.append({"id": _client_id(row.platform_message_id), "role": "user", "text": row.text, "reply_to": ""})
    return frames[-limit:]


class FeedbackNotFound(Exception):
    """No answer with that id in this visitor's chat."""


def feedback_record(*, channel: Channel, visitor: Visitor, message_ref: str, rating: str) -> Any:
    """Store a thumbs rating (up = 5, down = 1, source "button") on one of the visitor's answers,
    replacing an earlier rating of it. ``message_ref`` is the answer's frame id (``parley-<pk>``).
    Returns the Feedback row. Raises ``ValueError`` for a rating other than "up"/"down" and
    ``FeedbackNotFound`` for an answer that is not this visitor's."""
    from apps.conversations.models import Feedback, Message
    from apps.conversations.review import THUMB_RATINGS, record_feedback

    if rating not in THUMB_RATINGS:
        raise ValueError("rating must be 'up' or 'down'")
    match = re.fullmatch(r"(?:parley-)?(\d{1,18})", message_ref or "")
    if match is None:
        raise FeedbackNotFound("unknown message")
    message = Message.objects.filter(
        pk=int(match.group(1)),
        role=Message.Role.ASSISTANT,
        conversation__channel=channel,
        conversation__chat_id=visitor.chat_id,
        conversation__user_id=visitor.visitor_id,
    ).first()
    if message is None:
        raise FeedbackNotFound("unknown message")
    return record_feedback(message=message, rating=THUMB_RATINGS[rating], source=Feedback.Source.BUTTON)
