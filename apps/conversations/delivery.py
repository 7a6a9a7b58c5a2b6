"""Delivery that outlives platform outages (docs/reliability.md).

A reply is made once and stored; sending it is a separate matter with its own budget. The message
pipeline sends a fresh reply at once; when the platform does not take it, the reply is handed over
here (``hand_over``) and the message itself is finished — its claims are for making the answer,
not for waiting on a platform. From then on:

* a temporary failure (5xx, 429, a timeout, a refused connection) is retried after
  ``PARLEY_DELIVERY_BACKOFF_SECONDS``, doubling up to ``PARLEY_DELIVERY_BACKOFF_MAX_SECONDS``, for
  ``PARLEY_DELIVERY_RETRY_HOURS`` after the reply was made; then it is given up (``expired``);
* a permanent one (the bot blocked or removed, the chat deleted, credentials refused) stops at once
  (``failed``), with the platform's reason;
* a stored reply is sent once: each attempt first takes the reply with a conditional UPDATE on its
  attempt count (two sweepers or a redelivered task cannot both send it), a delivered reply is never
  sent again, and adapters carry the reply's idempotency key to the platform where it has one.

The sweeper (``sweep_deliveries``, every ``PARLEY_DELIVERY_SWEEP_INTERVAL`` seconds) dispatches due
retries; ``retry_now`` (the admin's action) makes replies due at once, failed and expired ones too.
Expired access tokens are the adapters' business: they drop a token the platform calls invalid
and try once more with a fresh one.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from apps.channels.platforms.base import OutboundReply, PlatformError, SentRef, Target
from apps.channels.platforms.registry import get_adapter
from apps.core import metrics
from apps.core.tasks import enqueue

from .feedback_links import feedback_url
from .models import DeliveryState, InboundMessage, Message

logger = logging.getLogger(__name__)
D = DeliveryState

#: Answers that can be rated on the feedback page (they carry the link or the buttons); "handoff":
#: the notice that a person handed the conversation back, which rates their help.
RATEABLE_SOURCES = ("model", "knowledge", "cache", "builtin", "handoff")
#: How long one attempt holds a reply (dispatched and not yet sent): longer than any send takes.
#: A worker that dies mid-attempt leaves the reply to the sweeper after this long.
ATTEMPT_LEASE_SECONDS = 60
SWEEP_BATCH = 500
#: States an operator may send again with "retry now".
RETRYABLE = (D.PENDING, D.FAILED, D.EXPIRED)


def backoff_seconds(attempts: int) -> float:
    """Wait before the next attempt once ``attempts`` have failed: the base, doubling, capped;
    ±10 % jitter so replies held up by one outage do not all come back in the same second."""
    base = settings.PARLEY_DELIVERY_BACKOFF_SECONDS
    wait = min(settings.PARLEY_DELIVERY_BACKOFF_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return wait * random.uniform(0.9, 1.1)


def give_up_at(reply: Message) -> datetime:
    return reply.created_at + timedelta(hours=settings.PARLEY_DELIVERY_RETRY_HOURS)


def target_for(inbound: InboundMessage) -> Target:
    return Target(
        chat_id=inbound.chat_id,
        user_id=inbound.user_id,
        is_group=inbound.is_group,
        reply_context=inbound.reply_context,
    )


def send(channel: Any, inbound: InboundMessage, reply: Message) -> SentRef:
    """Send ``reply`` (answering ``inbound``) through ``channel``'s adapter, with its idempotency
    key and, for answers that can be rated, the feedback link. Raises ``PlatformError``."""
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


def record(outcome: str) -> None:
    """Count one delivery outcome (delivered, retry, failed, expired)."""
    metrics.DELIVERIES.labels(outcome).inc()


def hand_over(reply: Message, exc: PlatformError, *, now: datetime | None = None) -> str:
    """The first send of ``reply`` (by the message's worker) failed with ``exc``: a permanent error
    stops its delivery (``failed``), any other leaves it to the retries here (``pending``). Returns
    the state it is in. A reply delivered meanwhile is left alone."""
    now = now or timezone.now()
    error = str(exc)[:2000]
    if exc.permanent:
        state, due = D.FAILED, None
    else:
        state, due = D.PENDING, now + timedelta(seconds=backoff_seconds(1))
    updated = Message.objects.filter(pk=reply.pk, delivered_at__isnull=True).update(
        delivery_state=state, delivery_attempts=F("delivery_attempts") + 1, next_delivery_at=due, delivery_error=error
    )
    if not updated:
        return D.DELIVERED
    reply.delivery_state, reply.next_delivery_at, reply.delivery_error = state, due, error
    record("failed" if exc.permanent else "retry")
    logger.warning(
        "reply not delivered: %s",
        "the platform refused it for good" if exc.permanent else "retrying later",
        extra={"reply": reply.pk, "status": exc.status, "error": error[:300]},
    )
    return state


def mark_delivered(reply: Message, sent: SentRef | None, *, now: datetime | None = None) -> None:
    """Record that the platform took ``reply`` (``sent``: its answer, None when unknown)."""
    now = now or timezone.now()
    fields: dict[str, Any] = {"delivered_at": now, "delivery_state": D.DELIVERED, "next_delivery_at": None}
    if sent is not None:
        fields["platform_message_id"] = sent.platform_message_id[:200]
    Message.objects.filter(pk=reply.pk, delivered_at__isnull=True).update(**fields)
    reply.delivered_at, reply.delivery_state = now, D.DELIVERED
    record("delivered")


def deliver_due(message_id: int, attempts: int) -> str:
    """One retry of a handed-over reply, if it is still pending at ``attempts`` (the dispatcher's
    view): take it (so nobody else sends it meanwhile), send, record. Returns the outcome:
    delivered, retry, failed, expired, or skipped (delivered, taken or retried by someone else)."""
    now = timezone.now()
    taken = Message.objects.filter(pk=message_id, delivery_state=D.PENDING, delivery_attempts=attempts).update(
        delivery_attempts=attempts + 1, next_delivery_at=now + timedelta(seconds=ATTEMPT_LEASE_SECONDS)
    )
    if not taken:
        return "skipped"
    reply = Message.objects.select_related("conversation__channel__bot__tenant", "inbound").get(pk=message_id)
    channel = reply.conversation.channel
    inbound = reply.inbound
    if inbound is None:  # the message it answers is gone (retention): nowhere to send it
        _finish(reply, attempts + 1, D.FAILED, "the message this reply answers no longer exists")
        record("failed")
        return "failed"
    try:
        sent = send(channel, inbound, reply)
    except PlatformError as exc:
        error = str(exc)[:2000]
        later = timezone.now()
        if exc.permanent:
            outcome, state, due = "failed", D.FAILED, None
        elif later >= give_up_at(reply):
            outcome, state, due = "expired", D.EXPIRED, None
        else:
            outcome, state, due = "retry", D.PENDING, later + timedelta(seconds=backoff_seconds(attempts + 1))
        _finish(reply, attempts + 1, state, error, due=due)
        record(outcome)
        # A reply given up (expired) or refused for good is an operator's business: an error, beside
        # the admin's undelivered list and parley_deliveries_total{outcome="expired"|"failed"}.
        extra = {"reply": reply.pk, "attempts": attempts + 1, "outcome": outcome, "error": error[:300]}
        if outcome == "retry":
            logger.warning("reply retry failed", extra=extra)
        else:
            reason = "given up after retrying" if outcome == "expired" else "refused for good"
            logger.error("reply not delivered: %s", reason, extra=extra)
        return outcome
    mark_delivered(reply, sent)
    logger.info("reply delivered after retrying", extra={"reply": reply.pk, "attempts": attempts + 1})
    return "delivered"


def _finish(reply: Message, attempts: int, state: str, error: str, *, due: datetime | None = None) -> None:
    Message.objects.filter(pk=reply.pk, delivery_state=D.PENDING, delivery_attempts=attempts).update(
        delivery_state=state, next_delivery_at=due, delivery_error=error
    )


def _dispatch(rows: list[tuple[int, int, Any]], now: datetime) -> int:
    """Enqueue one attempt per (id, attempts, next_delivery_at) row, each reserved first (its next
    attempt moved a lease ahead, so the next sweep does not enqueue it again while it waits in the
    queue; a lost task is dispatched again after the lease)."""
    from .tasks import deliver_reply

    reserve = now + timedelta(seconds=ATTEMPT_LEASE_SECONDS)
    dispatched = 0
    for pk, attempts, due in rows:
        if Message.objects.filter(
            pk=pk, delivery_state=D.PENDING, delivery_attempts=attempts, next_delivery_at=due
        ).update(next_delivery_at=reserve):
            enqueue(deliver_reply, pk, attempts)
            dispatched += 1
    return dispatched


def sweep_deliveries(*, now: datetime | None = None) -> int:
    """Dispatch the handed-over replies whose next attempt is due. Returns how many."""
    now = now or timezone.now()
    rows = list(
        Message.objects.filter(delivery_state=D.PENDING, next_delivery_at__lte=now)
        .order_by("next_delivery_at")
        .values_list("pk", "delivery_attempts", "next_delivery_at")[:SWEEP_BATCH]
    )
    return _dispatch(rows, now) if rows else 0


def undelivered(queryset: QuerySet | None = None) -> QuerySet:
    """Replies not delivered and not being sent with their answer: waiting, refused or given up."""
    queryset = Message.objects.all() if queryset is None else queryset
    return queryset.filter(delivery_state__in=RETRYABLE)


def retry_now(queryset: QuerySet) -> int:
    """Send the undelivered replies in ``queryset`` now (the admin's "retry now"): pending ones
    are made due, failed and expired ones pending again for one more attempt. Returns how many
    were dispatched."""
    now = timezone.now()
    ids = list(undelivered(queryset).filter(delivered_at__isnull=True).values_list("pk", flat=True)[:SWEEP_BATCH])
    Message.objects.filter(pk__in=ids, delivery_state__in=RETRYABLE, delivered_at__isnull=True).update(
        delivery_state=D.PENDING, next_delivery_at=now
    )
    rows = list(
        Message.objects.filter(pk__in=ids, delivery_state=D.PENDING).values_list(
            "pk", "delivery_attempts", "next_delivery_at"
        )
    )
    return _dispatch(rows, now)
