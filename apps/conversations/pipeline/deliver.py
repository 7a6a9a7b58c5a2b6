"""Store a reply once and send it once.

A reply is stored only by the worker that still owns the message (so two workers can never both
answer it), and sent only while its ``delivered_at`` is empty (so a re-run after a crash re-sends
an undelivered answer instead of generating a new one, and never sends a delivered one again).

On PostgreSQL storing is one statement (ownership check under a row lock, the last "has the
sender written again?" check, the insert and the link), and so is recording the delivery together
with the message's final status and the conversation's activity.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from apps.channels.platforms.base import OutboundReply, PlatformError, SentRef, Target
from apps.channels.platforms.registry import get_adapter
from apps.core import metrics

from ..feedback_links import feedback_url
from ..models import Conversation, InboundMessage, Message
from . import sql
from .claim import Claim
from .turns import newer_turn

S = InboundMessage.Status
#: Answers that can be rated on the feedback page ("handoff": the notice that a person has handed
#: the conversation back, which rates their help).
RATEABLE_SOURCES = ("model", "knowledge", "cache", "builtin", "handoff")


def target_for(inbound: InboundMessage) -> Target:
    return Target(
        chat_id=inbound.chat_id,
        user_id=inbound.user_id,
        is_group=inbound.is_group,
        reply_context=inbound.reply_context,
    )


def store_reply(
    claim: Claim, conv: Conversation, *, text: str, check_newer: bool = False, **fields: Any
) -> Message | None:
    """Create the assistant ``Message`` answering ``claim.inbound`` and link it, or return None when
    this worker no longer owns the message (another worker took it over).

    ``check_newer``: first make sure the sender has not written again (an ordinary message or
    ``/stop``) — the database's answer, at the moment of storing. If they have, the answer is kept
    for review out of the context (``interrupted``; not stored when it has no text), the message
    is finished as interrupted, and the returned ``Message`` has ``interrupted=True``.
    """
    inbound = claim.inbound
    reply = Message(
        conversation=conv,
        inbound=inbound,
        role=Message.Role.ASSISTANT,
        text=text,
        created_at=timezone.now(),
        **fields,
    )
    if sql.fast():
        return _store_in_one_statement(claim, conv, reply, check_newer=check_newer)
    if check_newer and newer_turn(inbound) is not None:
        reply.interrupted = True
        if text:
            reply.save(force_insert=True)
        claim.finish(S.INTERRUPTED)
        return reply
    with transaction.atomic():
        owned = (
            InboundMessage.objects.select_for_update()
            .filter(pk=inbound.pk, status=S.PROCESSING, attempts=claim.attempt)
            .exists()
        )
        if not owned:
            return None
        reply.save(force_insert=True)
        InboundMessage.objects.filter(pk=inbound.pk).update(reply=reply, conversation=conv)
    inbound.reply = reply
    return reply


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


def _store_in_one_statement(claim: Claim, conv: Conversation, reply: Message, *, check_newer: bool) -> Message | None:
    inbound = claim.inbound
    params = {f"v{i}": value for i, value in enumerate(sql.db_values(reply, _reply_fields()))}
    params.update(
        id=inbound.pk,
        processing=S.PROCESSING,
        attempt=claim.attempt,
        check_newer=check_newer,
        channel=inbound.channel_id,
        chat=inbound.chat_id,
        user=inbound.user_id,
        keep_interrupted=bool(reply.text),
        conversation=conv.pk,
        interrupted=S.INTERRUPTED,
        now=reply.created_at,
    )
    ((owned, interrupted, reply_id),) = sql.fetch(_store_sql(), params)
    if not owned:
        return None
    if reply_id is not None:
        reply.pk = reply_id
        reply._state.adding = False
        reply._state.db = DEFAULT_DB_ALIAS
    reply.interrupted = bool(interrupted)
    inbound.conversation = conv
    if not interrupted:
        inbound.reply = reply
    return reply


def _send(inbound: InboundMessage, reply: Message) -> SentRef:
    channel = inbound.channel
    adapter = get_adapter(channel.platform)
    if adapter is None:
        raise PlatformError(f"no adapter for platform '{channel.platform}'", permanent=True)
    link = ""
    if channel.bot.feedback_links and reply.source in RATEABLE_SOURCES and not reply.failed:
        link = feedback_url(reply)
    outbound = OutboundReply(markdown=reply.text, feedback_url=link, idempotency_key=f"parley-{reply.pk}")
    try:
        sent = adapter.send(channel, target_for(inbound), outbound)
    except PlatformError:
        metrics.REPLIES.labels(channel.platform, "failed").inc()
        raise
    metrics.REPLIES.labels(channel.platform, "sent").inc()
    return sent


def send_reply(inbound: InboundMessage, reply: Message) -> None:
    """Send ``reply`` through the channel's adapter unless it was already delivered.

    Raises ``PlatformError`` (``permanent`` says whether a retry can help).
    """
    if reply.delivered_at is not None:
        return
    sent = _send(inbound, reply)
    now = timezone.now()
    Message.objects.filter(pk=reply.pk).update(delivered_at=now, platform_message_id=sent.platform_message_id[:200])
    reply.delivered_at = now


def deliver(
    claim: Claim, reply: Message, *, status: str, conv: Conversation | None = None, language: str | None = None
) -> bool:
    """Send ``reply`` unless it was delivered already, record the delivery, move the message to its
    final ``status`` (if still owned) and, with ``conv``, mark the conversation active now (and
    set its ``language`` unless that is None). Returns whether the message was finished.

    Raises ``PlatformError`` from the send (nothing is recorded then).
    """
    inbound = claim.inbound
    if not sql.fast():
        send_reply(inbound, reply)
        finished = claim.finish(status)
        if conv is not None:
            Conversation.objects.filter(pk=conv.pk).update(
                last_activity_at=timezone.now(), **({} if language is None else {"language": language})
            )
        return finished
    sent = None if reply.delivered_at is not None else _send(inbound, reply)
    now = timezone.now()
    ((finished,),) = sql.fetch(
        _deliver_sql(),
        {
            "now": now,
            "reply": reply.pk,
            "delivered": sent is not None,
            "platform_message_id": sent.platform_message_id[:200] if sent is not None else "",
            "conversation": conv.pk if conv is not None else None,
            "language": language,
            "id": inbound.pk,
            "processing": S.PROCESSING,
            "attempt": claim.attempt,
            "status": status,
        },
    )
    if sent is not None:
        reply.delivered_at = now
    return bool(finished)


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
