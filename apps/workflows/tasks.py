"""Celery tasks of workflows. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from apps.channels.platforms.base import PlatformError


# The limits stay above the longest call a workflow can be configured for (every attempt and wait).
@shared_task(bind=True, queue="webhooks", acks_late=True, max_retries=5, soft_time_limit=1200, time_limit=1260)
def call_workflow(self, run_id: int) -> None:
    """Call the business system for one run and tell the user (safe to run again for the same id:
    the call is made once, the result sent once)."""
    from .services import workflow_run_execute

    try:
        workflow_run_execute(run_id)
    except PlatformError as exc:  # the result could not be sent: retried, the call is not repeated
        if not exc.permanent:
            raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc
    except DatabaseError as exc:
        raise self.retry(exc=exc, countdown=min(60, 2**self.request.retries)) from exc


@shared_task(queue="default", acks_late=True, soft_time_limit=120, time_limit=150)
def sweep_workflow_runs() -> dict:
    """Beat: hand lost workflow calls to the queue again, or fail them and tell the user."""
    from .services import workflow_runs_sweep

    return workflow_runs_sweep()
