"""Celery wiring: configured from Django settings (``CELERY_*``), tasks discovered in ``apps.*``.

Queues by speed: ``llm`` (model calls, long limits), ``webhooks`` (workflow calls), ``default``
(fast sends and housekeeping). Run a worker with an I/O pool, e.g.::

    celery -A config worker -P threads -c 32 -Q default,llm,webhooks
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from apps.core.celery_signals import connect as _connect_signals  # noqa: E402 - after app setup

_connect_signals()
