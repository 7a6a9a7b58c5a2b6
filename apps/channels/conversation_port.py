"""What the channels need of the conversations, handed in by the conversations app.

Channels sit below conversations in the app layers (docs/architecture.md): a webhook, a long
connection or the web chat stores a message, records a rating click or reads a visitor's history,
but ``apps.channels`` imports nothing of ``apps.conversations``. The conversations app fills this
port in its ``AppConfig.ready`` (``connect``); the channels call ``conversations()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .platforms.base import Inbound, RatingClick, RatingOutcome


@dataclass(frozen=True)
class ConversationPort:
    #: Store new messages of a channel and queue them for the pipeline (duplicates dropped,
    #: rate limits applied); the rows that were new. ``accept_inbound(channel=, inbounds=, trace_id=)``
    accept_inbound: Callable[..., list[Any]]
    #: Record a thumbs-button click as its answer's rating. ``record_rating_click(channel=, click=)``
    record_rating_click: Callable[..., RatingOutcome]
    #: One person's latest turns in one chat, oldest first (``apps.conversations.selectors.chat_history``):
    #: ``chat_history(channel=, chat_id=, user_id=, limit=)`` → ``[{role, message_id, text,
    #: platform_message_id, rating}]``.
    chat_history: Callable[..., list[dict[str, Any]]]
    #: A thumbs rating given in the person's own chat: ``record_chat_rating(channel=, chat_id=,
    #: user_id=, message_id=, thumb=)``. Raises ``ValueError`` (not up/down) or ``AnswerNotFound``.
    record_chat_rating: Callable[..., Any]


class AnswerNotFound(LookupError):
    """No answer with that id among the person's answers in this chat."""


_port: ConversationPort | None = None


def connect(port: ConversationPort) -> None:
    """Called once by the conversations app when Django starts."""
    global _port
    _port = port


def conversations() -> ConversationPort:
    if _port is None:
        raise ImproperlyConfigured("apps.conversations is not installed: nothing stores the channels' messages")
    return _port


def accept(*, channel: Any, inbounds: list[Inbound], trace_id: str = "") -> list[Any]:
    """Store ``inbounds`` (in the form PostgreSQL can hold) and queue them; the rows that were new."""
    return conversations().accept_inbound(
        channel=channel, inbounds=[item.storable() for item in inbounds], trace_id=trace_id
    )


def record_rating_click(*, channel: Any, click: RatingClick) -> RatingOutcome:
    return conversations().record_rating_click(channel=channel, click=click)


def chat_history(*, channel: Any, chat_id: str, user_id: str, limit: int) -> list[dict[str, Any]]:
    return conversations().chat_history(channel=channel, chat_id=chat_id, user_id=user_id, limit=limit)


def record_chat_rating(*, channel: Any, chat_id: str, user_id: str, message_id: int, thumb: str) -> Any:
    return conversations().record_chat_rating(
        channel=channel, chat_id=chat_id, user_id=user_id, message_id=message_id, thumb=thumb
    )
