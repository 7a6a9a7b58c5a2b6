"""Store a reply once and send it once.

A reply is stored only by the worker that still owns the message (so two workers can never both
answer it), and sent only while its ``delivered_at`` is empty (so a re-run after a crash re-sends
an undelivered answer instead of generating a new one, and never sends a delivered one again).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.registry import get_adapter
from apps.core import metrics

from ..feedback_links import feedback_url
from ..models import Conversation, InboundMessage, Message
from .claim import Claim

#: Answers that can be rated on the feedback page.
RATEABLE_SOURCES = ("model", "knowledge", "cache", "builtin")


def target_for(inbound: InboundMessage) -> Target:
    return Target(
        chat_id=inbound.chat_id,
        user_id=inbound.user_id,
        is_group=inbound.is_group,
        reply_context=inbound.reply_context,
    )


def store_reply(claim: Claim, conv: Conversation, *, text: str, **fields) -> Message | None:
    """Create the assistant ``Message`` answering ``claim.inbound`` and link it, or return None when
    this worker no longer owns the message (another worker took it over)."""
    inbound = claim.inbound
    with transaction.atomic():
        owned = (
            InboundMessage.objects.select_for_update()
            .filter(pk=inbound.pk, status=InboundMessage.Status.PROCESSING, attempts=claim.attempt)
            .exists()
        )
        if not owned:
            return None
        reply = Message.objects.create(
            conversation=conv, inbound=inbound, role=Message.Role.ASSISTANT, text=text, **fields
        )
        InboundMessage.objects.filter(pk=inbound.pk).update(reply=reply, conversation=conv)
    inbound.reply = reply
    return reply


def send_reply(inbound: InboundMessage, reply: Message) -> None:
    """Send ``reply`` through the channel's adapter unless it was already delivered.

    Raises ``PlatformError`` (``permanent`` says whether a retry can help).
    """
    if reply.delivered_at is not None:
        return
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
    now = timezone.now()
    Message.objects.filter(pk=reply.pk).update(delivered_at=now, platform_message_id=sent.platform_message_id[:200])
    reply.delivered_at = now
