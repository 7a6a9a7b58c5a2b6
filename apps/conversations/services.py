"""Conversation services called from the edges (webhook view, web-chat consumer, beat).

Accept once: store each inbound message before the webhook is acknowledged, then enqueue it. This
path does no model or platform I/O — a database insert and a few cache counters per message — so a
webhook is answered in milliseconds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone
from redis.exceptions import RedisError

from apps.core import breaker, metrics, ratelimit
from apps.core.tasks import enqueue

from .commands import interrupts_answer
from .models import InboundMessage
from .pipeline.steps.merge import holds_every_message, merge_applies
from .pipeline.storage import MAX_ATTEMPTS, lease_seconds
from .pipeline.turns import mark_latest
from .tasks import handle_inbound

logger = logging.getLogger(__name__)
S = InboundMessage.Status

SWEEP_BATCH = 500
#: The error a stored message carries while its task could not be queued (Redis away): the
#: sweeper queues such messages at its next run, without the grace of the others.
NOT_QUEUED = "not queued yet: the task queue was unreachable"


def check_rate_limits(*, channel: Any, user_id: str) -> str:
    """Count one message against the end user's and the bot's limits (one cache round trip).
    Returns "" when it is within both, else the scope that refuses it ("user" or "bot"); the
    refusal is counted in the metrics. A message refused by its user's limit does not count
    against the bot's. With the cache unreachable, nothing is counted and the message is let
    through (``breaker.redis``)."""
    bot = channel.bot
    if breaker.redis.is_open():  # the cache is away: the message is worth more than its count
        return ""
    try:
        refused = ratelimit.hit_chain(
            [
                ratelimit.Limit("user", f"{bot.pk}:{channel.pk}:{user_id}", bot.user_rate_limit_per_minute, 60),
                ratelimit.Limit("bot", str(bot.pk), bot.rate_limit_per_second, 1),
            ]
        )
    except (RedisError, OSError) as exc:
        breaker.redis.trip(exc)
        return ""
    if refused is None:
        return ""
    scope = refused.scope
    metrics.RATE_LIMITED.labels(scope).inc()
    metrics.INBOUND_MESSAGES.labels(channel.platform, "rate_limited").inc()
    return scope


_INSERT_FIELDS = [f for f in InboundMessage._meta.concrete_fields if not f.primary_key]


def _insert_once(row: InboundMessage) -> bool:
    """INSERT ``row`` unless its channel + platform message id is stored already (one statement,
    ``ON CONFLICT DO NOTHING``, no transaction or savepoint). Sets ``row.pk``; False for a duplicate."""
    query = InsertQuery(InboundMessage, on_conflict=OnConflict.IGNORE)
    query.insert_values(_INSERT_FIELDS, [row])
    returned = query.get_compiler(using=router.db_for_write(InboundMessage)).execute_sql(
        returning_fields=[InboundMessage._meta.pk]
    )
    if not returned or returned[0] is None or returned[0][0] is None:
        return False
    row.pk = returned[0][0]
    row._state.adding = False
    row._state.db = router.db_for_write(InboundMessage)
    return True


def accept_inbound(*, channel: Any, inbounds: list[Any], trace_id: str = "") -> list[InboundMessage]:
    """Store new messages and enqueue their handling after commit. Returns the rows that were new.

    A redelivered message (same channel + platform message id) is recognised by the unique
    constraint and dropped. A message over a rate limit is stored too, marked ``refused_by``; its
    task sends the polite refusal. Short messages are enqueued after the bot's merge window.
    The usual message costs one INSERT, one rate-limit round trip and one publish.
    """
    accepted: list[InboundMessage] = []
    bot = channel.bot
    for item in inbounds:
        interrupts = interrupts_answer(item.text)
        row = InboundMessage(
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
            interrupts=interrupts,
            received_at=timezone.now(),
        )
        if not _insert_once(row):
            metrics.INBOUND_MESSAGES.labels(channel.platform, "duplicate").inc()
            logger.info("duplicate delivery ignored", extra={"platform_message_id": item.message_id[:200]})
            continue
        refused_by = check_rate_limits(channel=channel, user_id=row.user_id)
        if refused_by:
            InboundMessage.objects.filter(pk=row.pk).update(refused_by=refused_by)
            row.refused_by = refused_by
        else:
            metrics.INBOUND_MESSAGES.labels(channel.platform, "accepted").inc()
            if interrupts:
                transaction.on_commit(lambda row=row: _mark_latest(row))
        # The fixed-window rule delays the task by the window; the burst rule starts it at once (its
        # merge step holds only a message written right after the sender's previous one).
        held = not refused_by and holds_every_message(bot) and merge_applies(bot, row.text)
        countdown = bot.merge_window_ms / 1000 if held else None
        enqueue(handle_inbound, row.pk, countdown=countdown, unsent=lambda exc, pk=row.pk: _not_queued(pk))
        accepted.append(row)
    return accepted


def _mark_latest(row: InboundMessage) -> None:
    """The cache's note of the sender's newest message, unless the cache is away (streaming answers
    then learn of the newer message from the database, at their next decision point)."""
    if breaker.redis.is_open():
        return
    try:
        mark_latest(row)
    except (RedisError, OSError) as exc:
        breaker.redis.trip(exc)


def _not_queued(pk: int) -> None:
    """The task queue could not take the message's task: it is stored, so the webhook still says
    yes; the sweeper queues it at its next run after the queue is back (``NOT_QUEUED``)."""
    InboundMessage.objects.filter(pk=pk, status=S.RECEIVED).update(error=NOT_QUEUED)


def sweep_inbound(*, now: Any = None) -> int:
    """Re-drive messages nobody is working on: claims older than the lease (their worker died),
    received messages never claimed after ``PARLEY_RECEIVED_GRACE_SECONDS`` (their task was lost)
    and those whose task could not be queued (at once). Messages claimed ``MAX_ATTEMPTS`` times are
    failed. Returns how many were enqueued again (the claim decides which of them still need work)."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds())
    forgotten = now - timedelta(seconds=settings.PARLEY_RECEIVED_GRACE_SECONDS)
    InboundMessage.objects.filter(status=S.PROCESSING, claimed_at__lt=stale, attempts__gte=MAX_ATTEMPTS).update(
        status=S.FAILED, finished_at=now, error="gave up after repeated attempts"
    )
    ids = list(
        InboundMessage.objects.filter(status=S.PROCESSING, claimed_at__lt=stale)
        .order_by("claimed_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    waiting = list(
        InboundMessage.objects.filter(Q(received_at__lt=forgotten) | Q(error=NOT_QUEUED), status=S.RECEIVED)
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    ids += waiting
    InboundMessage.objects.filter(pk__in=waiting, status=S.RECEIVED, error=NOT_QUEUED).update(error="")
    for pk in ids:
        enqueue(handle_inbound, pk, unsent=lambda exc, pk=pk: _not_queued(pk))
    if ids:
        logger.warning("re-driving stuck messages", extra={"count": len(ids)})
    return len(ids)
