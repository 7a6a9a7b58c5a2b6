"""Handle one stored inbound message: claim it (the ``Turn``), then run the steps in order.

Idempotent and resumable: a message is claimed with a conditional UPDATE (and the claim renewed
while this worker is alive: ``heartbeat``); an answer already stored
is re-sent rather than regenerated; an answer already delivered is never sent again; a worker that
lost its claim (it was presumed dead and the message re-driven) stores and sends nothing.
"""

from __future__ import annotations

import contextlib
import logging

from django.db import DatabaseError

from apps.channels.platforms.base import PlatformError
from apps.core.logging import log_context

from .heartbeat import heartbeat
from .steps import STEPS
from .storage import storage
from .turn import DONE, Turn

logger = logging.getLogger(__name__)


def process_inbound(inbound_id: int) -> None:
    """Handle one inbound message if it can be claimed. A reply the platform does not take is
    handed over to the delivery retries (``sending.deliver``), not retried here. Raises
    ``PlatformError`` when another send failed (a workflow's note: the message is given back for a
    retry unless the error is permanent) and ``DatabaseError`` when the database is unavailable
    (the task retries)."""
    turn = storage().claim(inbound_id)
    if turn is None:
        return
    inbound, bot = turn.inbound, turn.bot
    with (
        log_context(
            tenant=bot.tenant.slug, bot=bot.slug, platform=inbound.channel.platform, trace_id=inbound.trace_id or None
        ),
        heartbeat.holding(inbound.pk, turn.attempt),
    ):
        try:
            handle(turn)
        except PlatformError as exc:
            turn.storage.release(turn, error=str(exc), permanent=exc.permanent)
            logger.warning("reply not delivered", extra={"inbound": inbound.pk, "permanent": exc.permanent})
            raise
        except Exception as exc:
            # Given back, not failed: it is tried again (the task retries database outages, the
            # sweeper re-drives the rest) and given up after MAX_ATTEMPTS.
            with contextlib.suppress(DatabaseError):
                turn.storage.release(turn, error=f"{type(exc).__name__}: {exc}", permanent=False)
            logger.exception("message handling failed", extra={"inbound": inbound.pk})
            if isinstance(exc, DatabaseError):
                raise


def handle(turn: Turn) -> None:
    """Run the steps on a claimed turn until one says the handling is over. What the steps add to
    the log context (the conversation) ends with the turn."""
    with log_context():
        for step in STEPS:
            if step(turn) is DONE:
                return
