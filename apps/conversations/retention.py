"""Data retention: conversations older than their bot's ``retention_days`` are deleted.

A conversation's age is its last activity. ``retention_days = 0`` keeps a bot's conversations
forever. Inbound messages are deleted with the same rule (their payloads may carry personal data),
in batches so a large backlog never holds long locks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from apps.bots.models import Bot
from apps.core.audit import audit_record

from .models import Conversation, InboundMessage

logger = logging.getLogger(__name__)
BATCH = 500


@dataclass
class PurgeResult:
    conversations: int = 0
    inbound: int = 0


def _delete_in_batches(qs) -> int:
    total = 0
    while True:
        ids = list(qs.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return total
        qs.model.objects.filter(pk__in=ids).delete()
        total += len(ids)


def retention_purge(*, now=None) -> PurgeResult:
    """Delete what every bot's retention period has expired. Returns how much was deleted."""
    now = now or timezone.now()
    result = PurgeResult()
    for bot in Bot.objects.filter(retention_days__gt=0).select_related("tenant"):
        cutoff = now - timezone.timedelta(days=bot.retention_days)
        convs = _delete_in_batches(Conversation.objects.filter(bot=bot, last_activity_at__lt=cutoff))
        inbound = _delete_in_batches(
            InboundMessage.objects.filter(channel__bot=bot, received_at__lt=cutoff).exclude(
                status__in=[InboundMessage.Status.RECEIVED, InboundMessage.Status.PROCESSING]
            )
        )
        if convs or inbound:
            audit_record(
                action="retention.purge",
                tenant=bot.tenant,
                target=bot.slug,
                conversations=convs,
                inbound=inbound,
                retention_days=bot.retention_days,
            )
            logger.info("retention purge", extra={"bot": bot.slug, "conversations": convs, "inbound": inbound})
        result.conversations += convs
        result.inbound += inbound
    return result
