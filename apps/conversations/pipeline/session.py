"""Sessions: the conversation a message belongs to, and the turns stored in it."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Conversation, InboundMessage, Message


def get_conversation(inbound: InboundMessage) -> Conversation:
    """The active conversation of channel + chat (+ user outside group chats), or a new one when
    there is none or the last one has been idle longer than the bot's idle timeout.

    Safe under concurrency: at most one conversation per key is active (a partial unique
    constraint), so workers handling a user's first messages at once end up in the same one.
    """
    channel = inbound.channel
    bot = channel.bot
    user_key = "" if inbound.is_group else inbound.user_id
    active = Conversation.objects.filter(
        channel=channel, chat_id=inbound.chat_id, user_id=user_key, status=Conversation.Status.ACTIVE
    ).select_related("bot", "tenant")
    conv = active.first()
    idle_since = timezone.now() - timedelta(minutes=bot.idle_timeout_minutes)
    if conv is not None and conv.last_activity_at < idle_since:
        Conversation.objects.filter(pk=conv.pk, last_activity_at__lt=idle_since).update(
            status=Conversation.Status.CLOSED
        )
        conv = active.first()
    if conv is None:
        try:
            with transaction.atomic():
                conv = Conversation.objects.create(
                    tenant=bot.tenant,
                    bot=bot,
                    channel=channel,
                    chat_id=inbound.chat_id,
                    user_id=user_key,
                    user_name="" if inbound.is_group else inbound.user_name,
                    is_group=inbound.is_group,
                )
        except IntegrityError:
            conv = active.get()
    InboundMessage.objects.filter(pk=inbound.pk).update(conversation=conv)
    inbound.conversation = conv
    return conv


def close_conversation(conv: Conversation) -> None:
    Conversation.objects.filter(pk=conv.pk).update(status=Conversation.Status.CLOSED)


def touch_conversation(conv: Conversation, **fields) -> None:
    Conversation.objects.filter(pk=conv.pk).update(last_activity_at=timezone.now(), **fields)


def store_user_turn(
    conv: Conversation, inbound: InboundMessage, *, language: str = "", source: str = "", first_attempt: bool = False
) -> Message:
    """The user's turn for ``inbound`` (created once), dated when the message arrived so that turns
    handled out of order still read in the order they were written. ``first_attempt``: the caller
    holds the first claim of ``inbound``, so no turn can exist yet (saves a query)."""
    if not first_attempt:
        existing = Message.objects.filter(inbound=inbound, role=Message.Role.USER).first()
        if existing is not None:
            return existing
    msg = Message.objects.create(
        conversation=conv,
        inbound=inbound,
        role=Message.Role.USER,
        text=inbound.text,
        author_id=inbound.user_id,
        author_name=inbound.user_name,
        language=language,
        source=source,
    )
    # auto_now_add ignores a given value on create, so the arrival time is set afterwards.
    Message.objects.filter(pk=msg.pk).update(created_at=inbound.received_at)
    msg.created_at = inbound.received_at
    return msg
