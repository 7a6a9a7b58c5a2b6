"""Celery tasks of human handoff. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from apps.channels.platforms.base import PlatformError


def _retry(task, exc: Exception):
    return task.retry(exc=exc, countdown=min(60, 2**task.request.retries))


@shared_task(bind=True, queue="default", acks_late=True, max_retries=5, soft_time_limit=60, time_limit=90)
def deliver_message(self, message_id: int) -> str:
    """Send an agent's reply or a handoff notice through the conversation's channel (once; a
    platform failure is handed over to delivery's retries)."""
    from .services import message_deliver

    try:
        return message_deliver(message_id)
    except DatabaseError as exc:
        raise _retry(self, exc) from exc


@shared_task(bind=True, queue="default", acks_late=True, max_retries=3, soft_time_limit=60, time_limit=90)
def notify_team(self, handoff_id: int) -> None:
    """Tell the team's IM group of a new waiting conversation."""
    from .services import team_notify

    try:
        team_notify(handoff_id)
    except PlatformError as exc:
        if not exc.permanent:
            raise _retry(self, exc) from exc


@shared_task(queue="llm", acks_late=True, soft_time_limit=120, time_limit=150)
def summarize_handoff(handoff_id: int) -> None:
    """Ask the bot for a one-sentence summary of what the waiting user needs."""
    from .services import handoff_summarize

    handoff_summarize(handoff_id)


@shared_task(queue="default", acks_late=True, soft_time_limit=60, time_limit=90)
def sweep_handoffs() -> int:
    """Beat: hand silent handoffs back to the bot."""
    from .services import handoffs_sweep

    return handoffs_sweep()
