"""Handle one stored inbound message: claim → session → generate → deliver.

Idempotent and resumable: a message is claimed with a conditional UPDATE, an answer already stored
is re-sent rather than regenerated, and an answer already delivered is never sent again.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.bots.knowledge import match_knowledge
from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.registry import get_adapter
from apps.core import metrics
from apps.core.language import detect_language
from apps.core.logging import log_context
from apps.llm import router

from ..models import Conversation, InboundMessage, Message

logger = logging.getLogger(__name__)


def claim(inbound_id: int) -> InboundMessage | None:
    """received → processing, once. None when another worker has it or it is finished."""
    now = timezone.now()
    updated = InboundMessage.objects.filter(pk=inbound_id, status=InboundMessage.Status.RECEIVED).update(
        status=InboundMessage.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not updated:
        return None
    return InboundMessage.objects.select_related("channel", "channel__bot", "channel__bot__tenant").get(pk=inbound_id)


def get_conversation(inbound: InboundMessage) -> Conversation:
    """The active conversation for channel + chat (+ user outside group chats), fresh after the idle timeout."""
    channel = inbound.channel
    bot = channel.bot
    user_key = "" if inbound.is_group else inbound.user_id
    conv = (
        Conversation.objects.filter(
            channel=channel, chat_id=inbound.chat_id, user_id=user_key, status=Conversation.Status.ACTIVE
        )
        .order_by("-last_activity_at")
        .first()
    )
    idle = timezone.timedelta(minutes=bot.idle_timeout_minutes)
    if conv is not None and conv.last_activity_at < timezone.now() - idle:
        Conversation.objects.filter(pk=conv.pk).update(status=Conversation.Status.CLOSED)
        conv = None
    if conv is None:
        conv = Conversation.objects.create(
            tenant=bot.tenant,
            bot=bot,
            channel=channel,
            chat_id=inbound.chat_id,
            user_id=user_key,
            user_name="" if inbound.is_group else inbound.user_name,
            is_group=inbound.is_group,
        )
    return conv


def build_context(conv: Conversation, *, max_turns: int) -> list[dict]:
    turns = list(conv.messages.filter(role__in=["user", "assistant"]).order_by("-created_at", "-id")[:max_turns])
    turns.reverse()
    context = []
    if conv.bot.system_prompt:
        context.append({"role": "system", "content": conv.bot.system_prompt})
    context += [{"role": m.role, "content": m.text} for m in turns]
    return context


def generate_reply(inbound: InboundMessage, conv: Conversation) -> Message:
    bot = conv.bot
    language = detect_language(inbound.text, default=conv.language or "en")
    Message.objects.get_or_create(
        conversation=conv,
        inbound=inbound,
        role=Message.Role.USER,
        defaults={
            "text": inbound.text,
            "author_id": inbound.user_id,
            "author_name": inbound.user_name,
            "language": language,
        },
    )
    entry = match_knowledge(bot, inbound.text)
    if entry is not None:
        answer = router.Answer(text=entry.answer, source="knowledge", cached=True)
    else:
        answer = router.generate(
            bot=bot, messages=build_context(conv, max_turns=bot.context_max_turns), language=language
        )
    with transaction.atomic():
        reply = Message.objects.create(
            conversation=conv,
            inbound=inbound,
            role=Message.Role.ASSISTANT,
            text=answer.text,
            language=language,
            model_config=answer.model_config,
            model_name=answer.model_name,
            provider=answer.provider,
            latency_ms=answer.latency_ms,
            tokens_in=answer.tokens_in,
            tokens_out=answer.tokens_out,
            cost=answer.cost,
            attempts=[a.as_dict() for a in answer.attempts],
            fallback_used=answer.fallback_used,
            cached=answer.cached,
            source=answer.source,
            failed=answer.failed,
        )
        InboundMessage.objects.filter(pk=inbound.pk).update(reply=reply, conversation=conv)
        Conversation.objects.filter(pk=conv.pk).update(last_activity_at=timezone.now(), language=language)
    return reply


def deliver(inbound: InboundMessage, reply: Message) -> None:
    channel = inbound.channel
    adapter = get_adapter(channel.platform)
    target = Target(
        chat_id=inbound.chat_id, user_id=inbound.user_id, is_group=inbound.is_group, reply_context=inbound.reply_context
    )
    try:
        sent = adapter.send(channel, target, OutboundReply(markdown=reply.text, idempotency_key=f"parley-{reply.pk}"))
    except PlatformError:
        metrics.REPLIES.labels(channel.platform, "failed").inc()
        raise
    metrics.REPLIES.labels(channel.platform, "sent").inc()
    Message.objects.filter(pk=reply.pk).update(
        delivered_at=timezone.now(), platform_message_id=sent.platform_message_id[:200]
    )


def process_inbound(inbound_id: int) -> None:
    inbound = claim(inbound_id)
    if inbound is None:
        return
    channel = inbound.channel
    bot = channel.bot
    with log_context(
        tenant=bot.tenant.slug, bot=bot.slug, platform=channel.platform, trace_id=inbound.trace_id or None
    ):
        conv = inbound.conversation or get_conversation(inbound)
        reply = inbound.reply or generate_reply(inbound, conv)
        if reply.delivered_at is None:
            try:
                deliver(inbound, reply)
            except PlatformError as exc:
                InboundMessage.objects.filter(pk=inbound.pk).update(
                    status=InboundMessage.Status.FAILED if exc.permanent else InboundMessage.Status.RECEIVED,
                    error=str(exc)[:2000],
                )
                raise
        InboundMessage.objects.filter(pk=inbound.pk).update(
            status=InboundMessage.Status.ANSWERED, finished_at=timezone.now(), conversation=conv
        )
        elapsed = (timezone.now() - inbound.received_at).total_seconds()
        metrics.AI_RESPONSE_DURATION.labels(bot.tenant.slug, bot.slug, channel.platform).observe(elapsed)
        logger.info("message answered", extra={"conversation": conv.pk, "elapsed_ms": int(elapsed * 1000)})
