"""Celery wiring: configured from Django settings (``CELERY_*``), tasks discovered in ``apps.*``.

Queues by speed: ``llm`` (model calls, long limits), ``webhooks`` (workflow calls), ``default``
(fast sends and housekeeping). Model calls wait on the network, so run workers with an I/O pool —
one process then keeps dozens of calls in flight::

    celery -A config worker -P threads -c 32 -Q default,llm,webhooks
    celery -A config beat            # the sweeper below (and other periodic work)
"""

import os

from celery import Celery
from celery.signals import worker_init
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _beat_schedule(sender: Celery, **_: object) -> None:
    """The periodic work, every PARLEY_*_INTERVAL seconds (config/settings.py). Set once Celery has
    read the Django settings, not at import: importing the settings package imports this module."""
    sender.conf.beat_schedule = {
        # Messages whose worker died mid-way (claim older than the lease) or whose task was lost.
        "sweep-inbound": {
            "task": "apps.conversations.tasks.sweep_inbound",
            "schedule": settings.PARLEY_SWEEP_INTERVAL,
        },
        # Replies the platform did not take at once, whose next attempt is due (apps/conversations/delivery.py).
        "sweep-deliveries": {
            "task": "apps.conversations.tasks.sweep_deliveries",
            "schedule": settings.PARLEY_DELIVERY_SWEEP_INTERVAL,
        },
        # Workflow calls whose task was lost (or whose worker died): re-queued, or failed and the user told.
        "sweep-workflow-runs": {
            "task": "apps.workflows.tasks.sweep_workflow_runs",
            "schedule": settings.PARLEY_WORKFLOW_SWEEP_INTERVAL,
        },
        # Human handoff: conversations silent longer than their bot's timeout go back to the bot.
        "sweep-handoffs": {
            "task": "apps.inbox.tasks.sweep_handoffs",
            "schedule": settings.PARLEY_HANDOFF_SWEEP_INTERVAL,
        },
        # Data retention: conversations older than their bot's retention_days.
        "purge-expired": {
            "task": "apps.conversations.tasks.purge_expired",
            "schedule": settings.PARLEY_RETENTION_INTERVAL,
        },
        # Knowledge-base URL sources whose refresh is due: fetched again, re-indexed if they changed.
        "refresh-knowledge-urls": {
            "task": "apps.knowledge.tasks.refresh_urls",
            "schedule": settings.KNOWLEDGE_REFRESH_INTERVAL,
        },
    }


from apps.core.celery_signals import connect as _connect_signals  # noqa: E402 - after app setup

_connect_signals()


@worker_init.connect
def _warm(**_: object) -> None:
    """A worker's first task as fast as its hundredth (apps/runtime/warmup.py), before it says ready."""
    from apps.runtime.warmup import warm

    warm("worker")
