"""Claim once: a message is worked on by one worker at a time, and a worker that died loses it.

``claim_inbound`` moves a row received → processing with a conditional UPDATE and bumps
``attempts``; that number is the worker's ownership token. A row left in processing longer than the
lease (``PARLEY_INBOUND_LEASE_SECONDS`` without a ``touch``) can be claimed again — by the
redelivered Celery task or by the sweeper — and the old holder, should it still be alive, finds it
no longer owns the row and stops before storing or sending anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from ..models import InboundMessage

S = InboundMessage.Status
#: A message is given up (failed) after this many claims.
MAX_ATTEMPTS = 5


def lease_seconds() -> float:
    """Seconds a claim holds without being renewed (setting or environment, default 120)."""
    value = getattr(settings, "PARLEY_INBOUND_LEASE_SECONDS", None) or os.environ.get("PARLEY_INBOUND_LEASE_SECONDS")
    return float(value or 120)


@dataclass
class Claim:
    """A worker's hold on one inbound message. ``attempt`` is the ownership token."""

    inbound: InboundMessage
    attempt: int

    def _mine(self):
        return InboundMessage.objects.filter(pk=self.inbound.pk, status=S.PROCESSING, attempts=self.attempt)

    def touch(self) -> bool:
        """Renew the lease. False when another worker has taken the message over."""
        return bool(self._mine().update(claimed_at=timezone.now()))

    def owned(self) -> bool:
        return self._mine().exists()

    def finish(self, status: str, *, error: str = "", **fields) -> bool:
        """Move the message to a final ``status`` (if still owned). Returns whether it did."""
        return bool(self._mine().update(status=status, finished_at=timezone.now(), error=error[:2000], **fields))

    def release(self, *, error: str, permanent: bool) -> None:
        """Give the message back (received, for a retry) or fail it (``permanent``)."""
        self._mine().update(status=S.FAILED if permanent else S.RECEIVED, error=error[:2000])


def claim_inbound(inbound_id: int) -> Claim | None:
    """Claim the message for this worker, or None when it is finished, held by a live worker, or
    has been tried ``MAX_ATTEMPTS`` times (it is then marked failed)."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds())
    claimable = Q(status=S.RECEIVED) | Q(status=S.PROCESSING, claimed_at__lt=stale)
    updated = InboundMessage.objects.filter(claimable, pk=inbound_id, attempts__lt=MAX_ATTEMPTS).update(
        status=S.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not updated:
        InboundMessage.objects.filter(claimable, pk=inbound_id, attempts__gte=MAX_ATTEMPTS).update(
            status=S.FAILED, finished_at=now, error="gave up after repeated attempts"
        )
        return None
    inbound = InboundMessage.objects.select_related(
        "channel", "channel__bot", "channel__bot__tenant", "reply", "conversation"
    ).get(pk=inbound_id)
    return Claim(inbound=inbound, attempt=inbound.attempts)
