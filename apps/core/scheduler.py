"""Periodic work in the embedded default, where no ``celery beat`` runs.

``start_inprocess_beat`` runs every interval entry of Celery's beat schedule on a daemon thread,
through ``enqueue`` (so in-process, like every other task there). Production runs ``celery beat``.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections

from .tasks import enqueue

logger = logging.getLogger(__name__)


def start_inprocess_beat(*, stop: threading.Event | None = None) -> threading.Thread:
    from celery.utils.imports import symbol_by_name

    from config.celery import app

    stop = stop or threading.Event()
    entries = []
    for name, entry in app.conf.beat_schedule.items():
        interval = entry["schedule"]
        if not isinstance(interval, int | float):
            logger.warning("in-process beat skips %s: only interval schedules are supported", name)
            continue
        entries.append((name, entry["task"], float(interval)))

    def loop() -> None:
        next_run = {name: time.monotonic() + min(interval, 10.0) for name, _, interval in entries}
        while not stop.wait(1.0):
            now = time.monotonic()
            for name, task_name, interval in entries:
                if now < next_run[name]:
                    continue
                next_run[name] = now + interval
                try:
                    task = app.tasks[task_name] if task_name in app.tasks else symbol_by_name(task_name)
                    enqueue(task)
                except Exception:
                    logger.exception("in-process beat could not start %s", name)
                finally:
                    close_old_connections()

    thread = threading.Thread(target=loop, name="parley-beat", daemon=True)
    thread.start()
    return thread
