"""Sessions: the conversation a message belongs to, and the turns stored in it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, transaction
from django.utils import timezone

from ..models import Conversation, InboundMessage, Message
from . import sql

_UNSET: Any = object()


def get_conversation(inbound: InboundMessage, *, active: Conversation | None = _UNSET) -> Conversation:
    """The active conversation of channel + chat (+ user outside group chats), or a new one when
    there is none or the last one has been idle longer than the bot's idle timeout.

    ``active``: the sender's active conversation (or None), when the caller read it already (the
    claim does). The message is linked to the conversation by ``store_user_turn``.

    Safe under concurrency: at most one conversation per key is active (a partial unique
    constraint), so workers handling a user's first messages at once end up in the same one.
    """
    channel = inbound.channel
    bot = channel.bot
    user_key = "" if inbound.is_group else inbound.user_id

    def query():  # built only when needed: most messages come with ``active`` read already
        return Conversation.objects.filter(
            channel=channel, chat_id=inbound.chat_id, user_id=user_key, status=Conversation.Status.ACTIVE
        ).select_related("bot", "tenant")

    conv = query().first() if active is _UNSET else active
    idle_since = timezone.now() - timedelta(minutes=bot.idle_timeout_minutes)
    if conv is not None and conv.last_activity_at < idle_since:
        Conversation.objects.filter(pk=conv.pk, last_activity_at__lt=idle_since).update(
            status=Conversation.Status.CLOSED
        )
        conv = query().first()
    if conv is None:
        conv = Conversation(
            tenant=bot.tenant,
            bot=bot,
            channel=channel,
            chat_id=inbound.chat_id,
            user_id=user_key,
            user_name="" if inbound.is_group else inbound.user_name,
            is_group=inbound.is_group,
        )
        if not _insert_unless_active(conv):
            conv = query().get()  # another worker started it a moment ago
    else:
        if conv.bot_id == bot.pk:
            conv.bot = bot
        if conv.tenant_id == bot.tenant_id:
            conv.tenant = bot.tenant
    if not sql.fast():
        InboundMessage.objects.filter(pk=inbound.pk).update(conversation=conv)
    inbound.conversation = conv
    return conv


def _insert_unless_active(conv: Conversation) -> bool:
    """INSERT ``conv`` unless its key has an active conversation already (False then). On
    PostgreSQL one ``INSERT … ON CONFLICT DO NOTHING``, with no transaction or savepoint around it."""
    if not sql.fast():
        try:
            with transaction.atomic():
                conv.save(force_insert=True)
        except IntegrityError:
            return False
        return True
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
    conv.pk = rows[0][0]
    conv._state.adding = False
    conv._state.db = DEFAULT_DB_ALIAS
    return True


def close_conversation(conv: Conversation) -> None:
    Conversation.objects.filter(pk=conv.pk).update(status=Conversation.Status.CLOSED)


def touch_conversation(conv: Conversation, **fields) -> None:
    Conversation.objects.filter(pk=conv.pk).update(last_activity_at=timezone.now(), **fields)


def store_user_turn(
    conv: Conversation, inbound: InboundMessage, *, language: str = "", source: str = "", first_attempt: bool = False
) -> Message:
    """The user's turn for ``inbound`` (created once), dated when the message arrived so that turns
    handled out of order still read in the order they were written; links ``inbound`` to ``conv``.
    ``first_attempt``: the caller holds the first claim of ``inbound``, so no turn can exist yet
    (saves a query). On PostgreSQL the turn and the link are one statement."""
    if not first_attempt:
        existing = Message.objects.filter(inbound=inbound, role=Message.Role.USER).first()
        if existing is not None:
            if inbound.conversation_id != conv.pk:
                InboundMessage.objects.filter(pk=inbound.pk).update(conversation=conv)
                inbound.conversation = conv
            return existing
    msg = Message(
        conversation=conv,
        inbound=inbound,
        role=Message.Role.USER,
        text=inbound.text,
        author_id=inbound.user_id,
        author_name=inbound.user_name,
        language=language,
        source=source,
        created_at=inbound.received_at,
    )
    if not sql.fast():
        # auto_now_add ignores a given value on create, so the arrival time is set afterwards — in
        # the same transaction, or another worker reading the context between the two statements
        # sees this turn dated "now" and out of order.
        with transaction.atomic():
            msg.save(force_insert=True)
            Message.objects.filter(pk=msg.pk).update(created_at=inbound.received_at)
        msg.created_at = inbound.received_at
        return msg
    fields = _turn_fields()
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    rows = sql.fetch(
        f"WITH link AS (UPDATE {sql.table(InboundMessage)} SET conversation_id = %s "  # noqa: S608
        "WHERE id = %s AND conversation_id IS DISTINCT FROM %s) "
        f"INSERT INTO {sql.table(Message)} ({names}) VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id",
        [conv.pk, inbound.pk, conv.pk, *sql.db_values(msg, fields)],
    )
    msg.pk = rows[0][0]
    msg._state.adding = False
    msg._state.db = DEFAULT_DB_ALIAS
    inbound.conversation = conv
    return msg


def _turn_fields() -> list:
    return [f for f in Message._meta.concrete_fields if not f.primary_key]
