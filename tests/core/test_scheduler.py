"""The embedded default runs Celery's beat schedule in-process (no `celery beat` there)."""

import threading
import time

from celery import shared_task

from apps.core.scheduler import start_inprocess_beat
from config.celery import app

CALLS: list[float] = []


@shared_task(name="tests.core.tick")
def tick() -> None:
    CALLS.append(time.monotonic())


def test_interval_entries_run_repeatedly_until_stopped(transactional_db, settings, monkeypatch):
    settings.TASKS_MODE = "eager"
    monkeypatch.setattr(app.conf, "beat_schedule", {"tick": {"task": "tests.core.tick", "schedule": 0.3}})
    CALLS.clear()
    stop = threading.Event()
    thread = start_inprocess_beat(stop=stop)
    deadline = time.monotonic() + 10
    while len(CALLS) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=5)
    assert len(CALLS) >= 2
    assert not thread.is_alive()


def test_real_schedule_has_sweeper_and_retention():
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"apps.conversations.tasks.sweep_inbound", "apps.conversations.tasks.purge_expired"} <= tasks
    from celery.utils.imports import symbol_by_name

    for task in tasks:
        assert symbol_by_name(task).name == task
