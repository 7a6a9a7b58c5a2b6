"""Conversation services called from the edges (webhook view, web-chat consumer, admin).

Accept once: store each inbound message before the webhook is acknowledged, then enqueue it."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from apps.core import metrics
from apps.core.tasks import enqueue

from .models import InboundMessage
from .tasks import handle_inbound

logger = logging.getLogger(__name__)


def accept_inbound(*, channel: Any, inbounds: list[Any], trace_id: str = "") -> list[InboundMessage]:
    """Store new messages (a redelivered one is recognised by channel + platform id and dropped)
    and enqueue their handling after commit. Returns the rows that were new."""
    accepted: list[InboundMessage] = []
    for item in inbounds:
        try:
            with transaction.atomic():
                row = InboundMessage.objects.create(
                    channel=channel,
                    platform_message_id=item.message_id[:200],
                    chat_id=item.chat_id[:200],
                    user_id=item.user_id[:200],
                    user_name=item.user_name[:200],
                    is_group=item.is_group,
                    text=item.text,
                    raw=item.raw,
                    reply_context=item.reply_context,
                    trace_id=trace_id,
                )
        except IntegrityError:
            metrics.INBOUND_MESSAGES.labels(channel.platform, "duplicate").inc()
            logger.info("duplicate delivery ignored", extra={"platform_message_id": item.message_id[:200]})
            continue
        metrics.INBOUND_MESSAGES.labels(channel.platform, "accepted").inc()
        enqueue(handle_inbound, row.pk)
        accepted.append(row)
    return accepted
