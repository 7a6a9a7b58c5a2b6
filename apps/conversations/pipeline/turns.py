"""Who is talking and which of their messages is the newest: the basis of merging and interruption.

A *sender* is channel + chat + user (in group chats too: one user's messages merge and interrupt
only each other). The newest interrupting message of each sender is also kept in the cache so a
streaming answer can check "has my user written again?" between tokens without a database query;
the database stays the authority at every decision point.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from ..models import InboundMessage

S = InboundMessage.Status
LATEST_TTL = 3600


def sender_key(channel_id: int, chat_id: str, user_id: str) -> str:
    digest = hashlib.blake2s(f"{channel_id}\x1f{chat_id}\x1f{user_id}".encode(), digest_size=12).hexdigest()
    return f"parley:turn:{digest}"


def mark_latest(row: InboundMessage) -> None:
    """Remember ``row`` as its sender's newest interrupting message (called when it is accepted)."""
    cache.set(sender_key(row.channel_id, row.chat_id, row.user_id), row.pk, timeout=LATEST_TTL)


def latest_id(inbound: InboundMessage) -> int | None:
    value = cache.get(sender_key(inbound.channel_id, inbound.chat_id, inbound.user_id))
    return int(value) if value is not None else None


def sender_rows(inbound: InboundMessage):
    return InboundMessage.objects.filter(
        channel_id=inbound.channel_id, chat_id=inbound.chat_id, user_id=inbound.user_id
    )
