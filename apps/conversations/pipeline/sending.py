"""Sending a reply through the channel's adapter, once.

A reply is sent only while its ``delivered_at`` is empty and it has not been handed over to the
delivery retries (so a re-run after a crash re-sends an undelivered answer instead of generating a
new one, and never sends a delivered one again, nor one the retries own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.channels.platforms.base import OutboundReply, PlatformError, SentRef, Target
from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.streaming import MessageStream
from apps.core import metrics

from .. import delivery
from ..feedback_links import feedback_url
from ..models import Conversation, DeliveryState, InboundMessage, Message

if TYPE_CHECKING:
    from .storage import Storage
    from .turn import Turn

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


def send(inbound: InboundMessage, reply: Message, *, live: MessageStream | None = None) -> SentRef:
    """Send ``reply`` to the sender of ``inbound`` (no bookkeeping); with ``live`` (the answer's
    partial message, streamed) the finished reply replaces it instead of arriving as a new message.
    Raises ``PlatformError`` (``permanent`` says whether a retry can help)."""
    channel = inbound.channel
    adapter = get_adapter(channel.platform)
    if adapter is None:
        raise PlatformError(f"no adapter for platform '{channel.platform}'", permanent=True)
    link = ""
    if channel.bot.feedback_links and reply.source in RATEABLE_SOURCES and not reply.failed:
        link = feedback_url(reply)
    outbound = OutboundReply(markdown=reply.text, feedback_url=link, idempotency_key=f"parley-{reply.pk}")
    try:
        sent = live.finish(outbound) if live is not None else adapter.send(channel, target_for(inbound), outbound)
    except PlatformError:
        metrics.REPLIES.labels(channel.platform, "failed").inc()
        raise
    metrics.REPLIES.labels(channel.platform, "sent").inc()
    return sent


def send_reply(storage: Storage, inbound: InboundMessage, reply: Message) -> None:
    """Send ``reply`` unless it was already delivered, and record the delivery."""
    if reply.delivered_at is not None:
        return
    storage.mark_delivered(reply, send(inbound, reply))


def deliver(
    turn: Turn, reply: Message, *, status: str, conversation: Conversation | None = None, language: str | None = None
) -> bool:
    """Send ``reply`` unless it was delivered (or handed over) already, record the delivery, move the
    message to its final ``status`` (if still owned) and, with ``conversation``, mark the conversation
    active now (and set its ``language`` unless that is None). Returns whether the message was finished.

    A platform that does not take the reply does not put the message back: the answer is made and
    stored, so its claims (``MAX_ATTEMPTS``) have done their work. The reply is handed over to the
    delivery retries (``apps.conversations.delivery``: growing backoff for hours, apart from the
    claims; a retry sends it as a new message) and the message finished as ``status`` — or, when the
    platform refused it for good (the bot blocked, the chat gone), as failed with the platform's reason.
    """
    sent = None
    if reply.delivered_at is None and not reply.delivery_state:
        try:
            sent = send(turn.inbound, reply, live=turn.live_message)
        except PlatformError as exc:
            state = delivery.hand_over(reply, exc)
            if state == DeliveryState.FAILED:
                return turn.storage.finish(turn, InboundMessage.Status.FAILED, error=str(exc))
    return turn.storage.record_delivery(turn, reply, sent, status=status, conversation=conversation, language=language)


def reply_and_finish(turn: Turn, *, text: str, source: str, status: str, language: str) -> None:
    """Store and send a reply that needs no model (commands, notices, prompts) and finish the
    message with ``status``. Nothing is stored or sent when the worker lost its claim."""
    reply = turn.storage.store_reply(turn, text=text, source=source, language=language)
    if reply is None:
        return
    deliver(turn, reply, status=status)
