"""Celery tasks of the message path. Thin: each calls one service or pipeline step."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from apps.channels.platforms.base import PlatformError


@shared_task(bind=True, queue="llm", acks_late=True, max_retries=5, soft_time_limit=300, time_limit=330)
def handle_inbound(self, inbound_id: int) -> None:
    """Handle one stored inbound message (safe to run any number of times for the same id)."""
    from .pipeline.process import process_inbound

    try:
        process_inbound(inbound_id)
    except PlatformError as exc:
        if not exc.permanent:
            raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc
    except DatabaseError as exc:
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc


@shared_task(queue="default", acks_late=True, soft_time_limit=60, time_limit=90)
def sweep_inbound() -> int:
    """Beat: re-drive messages whose worker died or whose task was lost."""
    from .services import sweep_inbound as sweep

    return sweep()


@shared_task(queue="default", acks_late=True, soft_time_limit=600, time_limit=660)
def purge_expired() -> dict:
    """Beat: delete conversations past their bot's retention period."""
    from .retention import retention_purge

    result = retention_purge()
    return {"conversations": result.conversations, "inbound": result.inbound}


@shared_task(queue="default", acks_late=True, soft_time_limit=60, time_limit=90)
def deliver_reply(message_id: int, attempts: int) -> str:
    """One retry of a reply the platform did not take (safe to run twice: only one sends)."""
    from .delivery import deliver_due

    return deliver_due(message_id, attempts)


@shared_task(queue="default", acks_late=True, soft_time_limit=60, time_limit=90)
def sweep_deliveries() -> int:
    """Beat: dispatch the reply retries that are due."""
    from .delivery import sweep_deliveries as sweep

    return sweep()
