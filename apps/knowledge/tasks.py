"""Celery tasks of knowledge bases. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError


@shared_task(bind=True, queue="default", acks_late=True, max_retries=3, soft_time_limit=3600, time_limit=3660)
def index_document(self, doc_id: int, generation: int, force: bool = False) -> str:
    """Index one generation of a document (safe to run again: a stale generation does nothing)."""
    from .services import index_document as run

    try:
        return run(doc_id, generation, force)
    except DatabaseError as exc:
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc


@shared_task(queue="default", acks_late=True, soft_time_limit=120, time_limit=150)
def refresh_urls() -> int:
    """Beat: URL sources due a refresh are fetched again (re-indexed only if the page changed)."""
    from .services import refresh_urls as run

    return run()
