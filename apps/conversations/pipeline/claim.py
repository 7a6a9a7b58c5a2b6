"""Claim once: a message is worked on by one worker at a time, and a worker that died loses it.

``claim_inbound`` moves a row received → processing with a conditional UPDATE and bumps
``attempts``; that number is the worker's ownership token. A row left in processing longer than the
lease (``PARLEY_INBOUND_LEASE_SECONDS`` without a ``touch``) can be claimed again — by the
redelivered Celery task or by the sweeper — and the old holder, should it still be alive, finds it
no longer owns the row and stops before storing or sending anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from apps.bots.models import Bot, BotFallback, KnowledgeEntry
from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from apps.tenants.models import Tenant

from ..models import Conversation, InboundMessage, Message
from . import sql

S = InboundMessage.Status
#: A message is given up (failed) after this many claims.
MAX_ATTEMPTS = 5


def lease_seconds() -> float:
    """Seconds a claim holds without being renewed (setting or environment, default 120)."""
    value = getattr(settings, "PARLEY_INBOUND_LEASE_SECONDS", None) or os.environ.get("PARLEY_INBOUND_LEASE_SECONDS")
    return float(value or 120)


@dataclass
class Claim:
    """A worker's hold on one inbound message. ``attempt`` is the ownership token.

    Read with the claim, as they are in the database now (PostgreSQL; None elsewhere, and the
    steps then read them themselves): ``conversation``, the conversation the message is linked
    to or else its sender's active one (``linked`` tells which); ``models``, the bot's usable
    model rows (primary, fallbacks, language routes) for the router; ``knowledge_stamp``, a digest
    of the bot's knowledge entries (the matcher re-reads them only when it changes).
    """

    inbound: InboundMessage
    attempt: int
    conversation: Conversation | None = None
    linked: bool = False
    models: list[Any] | None = None
    knowledge_stamp: str | None = None
    prefetched: bool = field(default=False)

    def _mine(self):
        return InboundMessage.objects.filter(pk=self.inbound.pk, status=S.PROCESSING, attempts=self.attempt)

    def touch(self) -> bool:
        """Renew the lease. False when another worker has taken the message over."""
        return bool(self._mine().update(claimed_at=timezone.now()))

    def owned(self) -> bool:
        return self._mine().exists()

    def finish(self, status: str, *, error: str = "", **fields) -> bool:
        """Move the message to a final ``status`` (if still owned). Returns whether it did."""
        return bool(self._mine().update(status=status, finished_at=timezone.now(), error=error[:2000], **fields))

    def release(self, *, error: str, permanent: bool) -> None:
        """Give the message back (received, for a retry) or fail it (``permanent``)."""
        self._mine().update(status=S.FAILED if permanent else S.RECEIVED, error=error[:2000])


def claim_inbound(inbound_id: int) -> Claim | None:
    """Claim the message for this worker, or None when it is finished, held by a live worker, or
    has been tried ``MAX_ATTEMPTS`` times (it is then marked failed)."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds())
    claimable = Q(status=S.RECEIVED) | Q(status=S.PROCESSING, claimed_at__lt=stale)
    if sql.fast():
        claim = _claim_in_one_statement(inbound_id, now=now, stale=stale)
        if claim is not None:
            return claim
    else:
        updated = InboundMessage.objects.filter(claimable, pk=inbound_id, attempts__lt=MAX_ATTEMPTS).update(
            status=S.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
        )
        if updated:
            inbound = InboundMessage.objects.select_related(
                "channel", "channel__bot", "channel__bot__tenant", "reply", "conversation"
            ).get(pk=inbound_id)
            return Claim(inbound=inbound, attempt=inbound.attempts)
    InboundMessage.objects.filter(claimable, pk=inbound_id, attempts__gte=MAX_ATTEMPTS).update(
        status=S.FAILED, finished_at=now, error="gave up after repeated attempts"
    )
    return None


@cache
def _shapes() -> tuple[sql.Shape, ...]:
    return (
        sql.Shape(InboundMessage, "claimed"),
        sql.Shape(Channel, "ch"),
        sql.Shape(Bot, "b"),
        sql.Shape(Tenant, "t"),
        sql.Shape(Conversation, "c"),
        sql.Shape(Message, "r"),
        sql.Shape(ModelConfig, "m"),
    )


@cache
def _claim_sql() -> str:
    inbound, channel, bot, tenant, conv, msg, model, fallback, knowledge = (
        sql.table(m)
        for m in (InboundMessage, Channel, Bot, Tenant, Conversation, Message, ModelConfig, BotFallback, KnowledgeEntry)
    )
    # One row per usable model of the bot (at least one row): the claimed message with its channel,
    # bot, tenant, conversation (linked, else the sender's active one) and stored reply, then the
    # model row with its fallback position, then the digest of the bot's knowledge entries.
    return f"""
WITH claimed AS (
    UPDATE {inbound} SET status = %(processing)s, claimed_at = %(now)s, attempts = attempts + 1
    WHERE id = %(id)s AND attempts < %(max_attempts)s
      AND (status = %(received)s OR (status = %(processing)s AND claimed_at < %(stale)s))
    RETURNING *
)
SELECT {sql.columns(_shapes())}, fb.position, fb.id, kn.stamp
FROM claimed
JOIN {channel} ch ON ch.id = claimed.channel_id
JOIN {bot} b ON b.id = ch.bot_id
JOIN {tenant} t ON t.id = b.tenant_id
LEFT JOIN {conv} c ON c.id = COALESCE(claimed.conversation_id, (
    SELECT a.id FROM {conv} a
    WHERE a.channel_id = claimed.channel_id AND a.chat_id = claimed.chat_id AND a.status = %(active)s
      AND a.user_id = CASE WHEN claimed.is_group THEN '' ELSE claimed.user_id END
    LIMIT 1))
LEFT JOIN {msg} r ON r.id = claimed.reply_id
LEFT JOIN LATERAL (
    SELECT COALESCE(md5(string_agg(concat_ws(chr(31), k.id, k.enabled, k.question, k.answer, k.keywords),
                                   chr(30) ORDER BY k.id)), 'none') AS stamp
    FROM {knowledge} k WHERE k.bot_id = b.id
) kn ON true
LEFT JOIN {model} m ON m.tenant_id = b.tenant_id AND m.enabled AND (
    m.id = b.model_id
    OR m.id IN (SELECT f.model_id FROM {fallback} f WHERE f.bot_id = b.id)
    OR m.name IN (SELECT value FROM jsonb_each_text(
        CASE WHEN jsonb_typeof(b.language_routes) = 'object' THEN b.language_routes ELSE '{{}}'::jsonb END)))
LEFT JOIN LATERAL (
    SELECT f.position, f.id FROM {fallback} f WHERE f.bot_id = b.id AND f.model_id = m.id
    ORDER BY f.position, f.id LIMIT 1
) fb ON true
"""  # noqa: S608 - names from the models' metadata; every value is a bound parameter


def _claim_in_one_statement(inbound_id: int, *, now: Any, stale: Any) -> Claim | None:
    rows = sql.fetch(
        _claim_sql(),
        {
            "id": inbound_id,
            "now": now,
            "stale": stale,
            "max_attempts": MAX_ATTEMPTS,
            "processing": S.PROCESSING,
            "received": S.RECEIVED,
            "active": Conversation.Status.ACTIVE,
        },
    )
    if not rows:
        return None
    shapes = _shapes()
    inbound, channel, bot, tenant, conv, reply, _, _, _, stamp = sql.split(rows[0], shapes)
    bot.tenant = tenant
    channel.bot = bot
    inbound.channel = channel
    if reply is not None and conv is not None and reply.conversation_id == conv.pk:
        reply.conversation = conv
    inbound.reply = reply
    linked = inbound.conversation_id is not None and conv is not None and conv.pk == inbound.conversation_id
    if linked:
        inbound.conversation = conv
    models = []
    for row in rows:
        config, fb_position, fb_id = _model_of(row, shapes)
        if config is None:
            continue
        config.tenant = tenant
        config.fb_position, config.fb_id = fb_position, fb_id
        models.append(config)
    return Claim(
        inbound=inbound,
        attempt=inbound.attempts,
        conversation=conv,
        linked=linked,
        models=models,
        knowledge_stamp=stamp,
        prefetched=True,
    )


def _model_of(row: tuple, shapes: tuple[sql.Shape, ...]) -> tuple[Any, Any, Any]:
    start = sum(shape.width for shape in shapes[:6])
    model_shape = shapes[6]
    config = model_shape.build(row[start : start + model_shape.width])
    rest = row[start + model_shape.width :]
    return config, rest[0], rest[1]
