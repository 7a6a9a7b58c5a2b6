"""Deliver: the reply is sent (or, when the platform does not take it now, handed over to the delivery
retries), the message finished as answered, and the conversation marked active (its language set
from this turn unless pinned)."""

from __future__ import annotations

import logging

from django.utils import timezone

from apps.core import metrics

from ...models import DeliveryState, InboundMessage
from ..sending import deliver
from ..turn import DONE, Outcome, Turn

logger = logging.getLogger(__name__)
S = InboundMessage.Status


def run(turn: Turn) -> Outcome:
    conv, inbound, bot = turn.conversation, turn.inbound, turn.bot
    language = None if conv.language_pinned else turn.language
    deliver(turn, turn.reply, status=S.ANSWERED, conversation=conv, language=language)
    if turn.reply.delivery_state == DeliveryState.FAILED:
        return DONE  # the platform refused it for good: the message failed, with its reason (logged)
    elapsed = (timezone.now() - inbound.received_at).total_seconds()
    metrics.AI_RESPONSE_DURATION.labels(bot.tenant.slug, bot.slug, inbound.channel.platform).observe(elapsed)
    logger.info("message answered", extra={"inbound": inbound.pk, "elapsed_ms": int(elapsed * 1000)})
    return DONE
