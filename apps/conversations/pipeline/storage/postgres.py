"""The pipeline's storage on PostgreSQL: the hot operations as single statements.

An ordinary message would cost about twenty ORM round trips; here the claim, the user turn, the
snapshot, the reply and the delivery are one statement each (data-modifying CTEs,
``UPDATE … RETURNING``, joins), so the database does the bookkeeping in a handful of round trips
and this process compiles no ORM query on the way (tests/conversations/test_pipeline_cost.py holds
the budget). Every statement is atomic on its own (one implicit transaction), and every write that
needs the worker to still own its message carries the ownership condition (status processing +
attempt number) in the same statement.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone

from apps.bots.models import Bot, BotFallback, KnowledgeEntry
from apps.bots.routing import NamedModels
from apps.channels.models import Channel
from apps.channels.platforms.base import SentRef
from apps.llm.models import ModelConfig
from apps.tenants.models import Tenant

from ...models import Conversation, InboundMessage, Message
from ..context import NOT_CONTEXT_SOURCES
from ..turn import Turn
from . import sql
from .base import MAX_ATTEMPTS, Snapshot, Storage

S = InboundMessage.Status


class PostgresStorage(Storage):
    # --- claim ------------------------------------------------------------------------------------

    def _claim(self, inbound_id: int, *, now: datetime, stale: datetime) -> Turn | None:
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
        shapes = _claim_shapes()
        inbound, channel, bot, tenant, conv, reply, _, fallback_ids, stamp = sql.split(rows[0], shapes)
        bot.tenant = tenant
        channel.bot = bot
        inbound.channel = channel
        if reply is not None and conv is not None and reply.conversation_id == conv.pk:
            reply.conversation = conv
        inbound.reply = reply
        linked = inbound.conversation_id is not None and conv is not None and conv.pk == inbound.conversation_id
        if linked:
            inbound.conversation = conv
        candidates = []
        model_shape = shapes[6]
        start = sum(shape.width for shape in shapes[:6])
        for row in rows:
            config = model_shape.build(row[start : start + model_shape.width])
            if config is not None:
                config.tenant = tenant
                candidates.append(config)
        return Turn(
            storage=self,
            inbound=inbound,
            attempt=inbound.attempts,
            found_conversation=conv,
            linked=linked,
            models=NamedModels(candidates=candidates, fallback_ids=list(fallback_ids or [])),
            knowledge_stamp=stamp,
        )

    # --- the conversation and the user's turn -----------------------------------------------------

    def _insert_unless_active(self, conv: Conversation) -> bool:
        """One ``INSERT … ON CONFLICT DO NOTHING``, with no transaction or savepoint around it."""
        now = timezone.now()
        conv.started_at = conv.last_activity_at = now
        fields = [f for f in Conversation._meta.concrete_fields if not f.primary_key]
        names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        rows = sql.fetch(
            f"INSERT INTO {sql.table(Conversation)} ({names}) VALUES ({', '.join(['%s'] * len(fields))}) "  # noqa: S608
            "ON CONFLICT DO NOTHING RETURNING id",
            sql.db_values(conv, fields),
        )
        if not rows:
            return False
        _saved(conv, rows[0][0])
        return True

    def _insert_user_turn(self, msg: Message, inbound: InboundMessage, conv: Conversation) -> None:
        fields = _turn_fields()
        names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        rows = sql.fetch(
            f"WITH link AS (UPDATE {sql.table(InboundMessage)} SET conversation_id = %s "  # noqa: S608
            "WHERE id = %s AND conversation_id IS DISTINCT FROM %s) "
            f"INSERT INTO {sql.table(Message)} ({names}) VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id",
            [conv.pk, inbound.pk, conv.pk, *sql.db_values(msg, fields)],
        )
        _saved(msg, rows[0][0])

    # --- the snapshot -----------------------------------------------------------------------------

    def snapshot(self, turn: Turn, *, in_flight_since: datetime) -> Snapshot:
        inbound, conv = turn.inbound, turn.conversation
        rows = sql.fetch(
            _snapshot_sql(),
            {
                "id": inbound.pk,
                "processing": S.PROCESSING,
                "received": S.RECEIVED,
                "attempt": turn.attempt,
                "channel": inbound.channel_id,
                "chat": inbound.chat_id,
                "user": inbound.user_id,
                "since": conv.started_at,
                "in_flight_since": in_flight_since,
                "conversation": conv.pk,
                "user_role": Message.Role.USER,
                "assistant_role": Message.Role.ASSISTANT,
                "limit": turn.bot.context_max_turns,
            },
        )
        owned, sender, previous_at = rows[0][0], json.loads(rows[0][1]), rows[0][2]
        shape = _turn_shape()
        turns = [t for t in (shape.build(row[3:]) for row in rows) if t is not None]
        turns.reverse()
        newer = next(((pk, text) for pk, text, _ in sender if pk > inbound.pk), None)
        pending = [pk for pk, _, status in sender if pk < inbound.pk and status == S.RECEIVED]
        in_flight = [pk for pk, _, status in sender if pk < inbound.pk and status == S.PROCESSING]
        return Snapshot(
            owned=bool(owned), newer=newer, pending=pending, turns=turns, in_flight=in_flight, previous_at=previous_at
        )

    # --- the reply and its delivery ---------------------------------------------------------------

    def _store_reply(self, turn: Turn, reply: Message, *, check_newer: bool) -> Message | None:
        inbound = turn.inbound
        params = {f"v{i}": value for i, value in enumerate(sql.db_values(reply, _reply_fields()))}
        params.update(
            id=inbound.pk,
            processing=S.PROCESSING,
            attempt=turn.attempt,
            check_newer=check_newer,
            channel=inbound.channel_id,
            chat=inbound.chat_id,
            user=inbound.user_id,
            keep_interrupted=bool(reply.text),
            conversation=turn.conversation.pk,
            interrupted=S.INTERRUPTED,
            now=reply.created_at,
        )
        ((owned, interrupted, reply_id),) = sql.fetch(_store_sql(), params)
        if not owned:
            return None
        if reply_id is not None:
            _saved(reply, reply_id)
        reply.interrupted = bool(interrupted)
        return reply

    def record_delivery(
        self,
        turn: Turn,
        reply: Message,
        sent: SentRef | None,
        *,
        status: str,
        conversation: Conversation | None = None,
        language: str | None = None,
    ) -> bool:
        now = timezone.now()
        ((finished,),) = sql.fetch(
            _deliver_sql(),
            {
                "now": now,
                "reply": reply.pk,
                "delivered": sent is not None,
                "platform_message_id": sent.platform_message_id[:200] if sent is not None else "",
                "conversation": conversation.pk if conversation is not None else None,
                "language": language,
                "id": turn.inbound.pk,
                "processing": S.PROCESSING,
                "attempt": turn.attempt,
                "status": status,
            },
        )
        if sent is not None:
            reply.delivered_at = now
        return bool(finished)


def _saved(obj: Any, pk: int) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS


# --- the statements ------------------------------------------------------------------------------


@cache
def _claim_shapes() -> tuple[sql.Shape, ...]:
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
    # One row per model the bot names (at least one row): the claimed message with its channel,
    # bot, tenant, conversation (linked, else the sender's active one) and stored reply, then the
    # model row, then the bot's fallback model ids in order and the digest of its knowledge
    # entries. Which of the models are used, and in which order, is the router's rule
    # (apps.llm.router.model_chain), not this statement's: it reads what the bot names.
    return f"""
WITH claimed AS (
    UPDATE {inbound} SET status = %(processing)s, claimed_at = %(now)s, attempts = attempts + 1
    WHERE id = %(id)s AND attempts < %(max_attempts)s
      AND (status = %(received)s OR (status = %(processing)s AND claimed_at < %(stale)s))
    RETURNING *
)
SELECT {sql.columns(_claim_shapes())}, fb.ids, kn.stamp
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
LEFT JOIN LATERAL (
    SELECT array_agg(f.model_id ORDER BY f.position, f.id) AS ids FROM {fallback} f WHERE f.bot_id = b.id
) fb ON true
LEFT JOIN {model} m ON m.tenant_id = b.tenant_id AND (
    m.id = b.model_id
    OR m.id = ANY(fb.ids)
    OR m.name IN (SELECT value FROM jsonb_each_text(
        CASE WHEN jsonb_typeof(b.language_routes) = 'object' THEN b.language_routes ELSE '{{}}'::jsonb END)))
"""  # noqa: S608 - names from the models' metadata; every value is a bound parameter


def _turn_fields() -> list:
    return [f for f in Message._meta.concrete_fields if not f.primary_key]


@cache
def _turn_shape() -> sql.Shape:
    return sql.Shape(Message, "m", ["id", "role", "text", "language", "author_id", "author_name"])


@cache
def _snapshot_sql() -> str:
    inbound, message = sql.table(InboundMessage), sql.table(Message)
    not_context = ", ".join(f"'{source}'" for source in NOT_CONTEXT_SOURCES)
    return f"""
SELECT s.owned, s.sender, s.previous_at, {_turn_shape().sql}
FROM (SELECT
    EXISTS (
        SELECT 1 FROM {inbound} o WHERE o.id = %(id)s AND o.status = %(processing)s AND o.attempts = %(attempt)s
    ) AS owned,
    (SELECT COALESCE(json_agg(json_build_array(i.id, i.text, i.status) ORDER BY i.id), '[]')::text
     FROM {inbound} i
     WHERE i.channel_id = %(channel)s AND i.chat_id = %(chat)s AND i.user_id = %(user)s
       AND i.interrupts AND i.refused_by = ''
       AND (i.id > %(id)s
            OR (i.id < %(id)s AND i.status = %(received)s AND i.received_at >= %(since)s)
            OR (i.id < %(id)s AND i.status = %(processing)s AND i.received_at >= %(in_flight_since)s
                AND NOT EXISTS (SELECT 1 FROM {message} u WHERE u.inbound_id = i.id AND u.role = %(user_role)s)))
    ) AS sender,
    (SELECT max(p.received_at) FROM {inbound} p
     WHERE p.channel_id = %(channel)s AND p.chat_id = %(chat)s AND p.user_id = %(user)s
       AND p.interrupts AND p.refused_by = '' AND p.id < %(id)s AND p.received_at >= %(since)s
    ) AS previous_at
) s
LEFT JOIN LATERAL (
    SELECT * FROM {message} m
    WHERE m.conversation_id = %(conversation)s AND m.role IN (%(user_role)s, %(assistant_role)s)
      AND NOT m.interrupted AND m.source NOT IN ({not_context})
      AND NOT (m.role = %(assistant_role)s AND m.failed)
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT %(limit)s
) m ON true
"""  # noqa: S608 - names from the models' metadata and constants; every value is a bound parameter


@cache
def _reply_fields() -> list:
    return [f for f in Message._meta.concrete_fields if not f.primary_key and f.name != "interrupted"]


@cache
def _store_sql() -> str:
    inbound, message = sql.table(InboundMessage), sql.table(Message)
    fields = _reply_fields()
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join(f"%(v{i})s" for i in range(len(fields)))
    return f"""
WITH owner AS (
    SELECT id FROM {inbound}
    WHERE id = %(id)s AND status = %(processing)s AND attempts = %(attempt)s
    FOR UPDATE
), newer AS (
    SELECT %(check_newer)s AND EXISTS (
        SELECT 1 FROM {inbound} n
        WHERE n.channel_id = %(channel)s AND n.chat_id = %(chat)s AND n.user_id = %(user)s
          AND n.id > %(id)s AND n.interrupts AND n.refused_by = ''
    ) AS found
), reply AS (
    INSERT INTO {message} ({names}, interrupted)
    SELECT {values}, newer.found FROM owner, newer
    WHERE NOT newer.found OR %(keep_interrupted)s
    RETURNING id, interrupted
), link AS (
    UPDATE {inbound} SET
        reply_id = COALESCE((SELECT reply.id FROM reply WHERE NOT reply.interrupted), {inbound}.reply_id),
        conversation_id = %(conversation)s,
        status = CASE WHEN newer.found THEN %(interrupted)s ELSE {inbound}.status END,
        finished_at = CASE WHEN newer.found THEN %(now)s ELSE {inbound}.finished_at END
    FROM owner, newer
    WHERE {inbound}.id = owner.id
)
SELECT (SELECT count(*) FROM owner), newer.found, (SELECT reply.id FROM reply) FROM newer
"""  # noqa: S608 - names from the models' metadata; every value is a bound parameter


@cache
def _deliver_sql() -> str:
    inbound, message, conversation = sql.table(InboundMessage), sql.table(Message), sql.table(Conversation)
    return f"""
WITH delivered AS (
    UPDATE {message} SET delivered_at = %(now)s, platform_message_id = %(platform_message_id)s
    WHERE id = %(reply)s AND %(delivered)s
), touched AS (
    UPDATE {conversation} SET last_activity_at = %(now)s, language = COALESCE(%(language)s, language)
    WHERE id = %(conversation)s
), finished AS (
    UPDATE {inbound} SET status = %(status)s, finished_at = %(now)s, error = ''
    WHERE id = %(id)s AND status = %(processing)s AND attempts = %(attempt)s
    RETURNING id
)
SELECT count(*) FROM finished
"""  # noqa: S608 - names from the models' metadata; every value is a bound parameter
