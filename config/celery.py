"""Celery wiring: configured from Django settings (``CELERY_*``), tasks discovered in ``apps.*``.

Queues by speed: ``llm`` (model calls, long limits), ``webhooks`` (workflow calls), ``default``
(fast sends and housekeeping). Model calls wait on the network, so run workers with an I/O pool —
one process then keeps dozens of calls in flight::

    celery -A config worker -P threads -c 32 -Q default,llm,webhooks
    celery -A config beat            # the sweeper below (and other periodic work)
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Messages whose worker died mid-way (claim older than the lease) or whose task was lost.
    "sweep-inbound": {
        "task": "apps.conversations.tasks.sweep_inbound",
        "schedule": float(os.environ.get("PARLEY_SWEEP_INTERVAL", "30")),
    },
    # Workflow calls whose task was lost (or whose worker died): re-queued, or failed and the user told.
    "sweep-workflow-runs": {
        "task": "apps.workflows.tasks.sweep_workflow_runs",
        "schedule": float(os.environ.get("PARLEY_WORKFLOW_SWEEP_INTERVAL", "60")),
    },
    # Data retention: conversations older than their bot's retention_days.
    "purge-expired": {
        "task": "apps.conversations.tasks.purge_expired",
        "schedule": float(os.environ.get("PARLEY_RETENTION_INTERVAL", "3600")),
    },
}

from apps.core.celery_signals import connect as _connect_signals  # noqa: E402 - after app setup

_connect_signals()
