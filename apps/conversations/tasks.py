"""Celery tasks of the message path. Thin: each calls one pipeline step."""

from __future__ import annotations

from celery import shared_task

from apps.channels.platforms.base import PlatformError


@shared_task(bind=True, queue="llm", acks_late=True, max_retries=5, soft_time_limit=300, time_limit=330)
def handle_inbound(self, inbound_id: int) -> None:
    from .pipeline.process import process_inbound

    try:
        process_inbound(inbound_id)
    except PlatformError as exc:
        if not exc.permanent:
            raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc
