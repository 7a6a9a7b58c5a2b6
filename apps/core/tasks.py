"""How Parley runs background work.

``enqueue(task, *args)`` is the only way the code starts a background task. It waits for the
current transaction to commit (so the worker sees the row it is given), then:

* ``PARLEY_TASKS_MODE=celery`` (production): ``task.apply_async`` on the task's queue;
* ``PARLEY_TASKS_MODE=inprocess`` (embedded default): runs the task on a small in-process thread
  pool, off the request thread, with the same code path as a worker;
* ``PARLEY_TASKS_MODE=eager`` (tests): runs the task on the committing thread, so a test sees the
  finished work when its request returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction

from . import breaker
from .logging import current_context, log_context
from .threads import LazyPool

logger = logging.getLogger(__name__)
_pool = LazyPool("parley-task", lambda: 16)


def _run_inprocess(task: Any, args: tuple, kwargs: dict, context: dict) -> None:
    try:
        with log_context(**context):
            task.apply(args=args, kwargs=kwargs, throw=False)
    except Exception:  # pragma: no cover - apply() already captures task errors
        logger.exception("in-process task %s crashed", task.name)
    finally:
        close_old_connections()


def enqueue(
    task: Any,
    *args: Any,
    countdown: float | None = None,
    unsent: Callable[[BaseException | None], None] | None = None,
    **kwargs: Any,
) -> None:
    """Run ``task(*args, **kwargs)`` in the background once the current transaction commits.

    ``unsent``: for work that something else picks up later (a sweeper) — when the task queue
    cannot take the task, ``unsent(error)`` is called instead of raising, and while the queue is
    known to be away (``breaker.redis`` open) it is called at once without trying (error None)."""
    context = current_context()

    def _send() -> None:
        if settings.TASKS_MODE == "celery":
            options: dict[str, Any] = {"headers": {"parley_context": context}}
            if countdown:
                options["countdown"] = countdown
            if unsent is None:
                task.apply_async(args=args, kwargs=kwargs, **options)
                return
            if breaker.redis.is_open():
                unsent(None)
                return
            try:
                task.apply_async(args=args, kwargs=kwargs, **options)
            except Exception as exc:  # kombu's OperationalError, redis-py's errors, socket errors
                breaker.redis.trip(exc)
                logger.warning("task %s not queued: the task queue is unreachable", task.name)
                unsent(exc)
            return
        if settings.TASKS_MODE == "eager":
            if countdown:
                time.sleep(countdown)
            with log_context(**context):
                task.apply(args=args, kwargs=kwargs, throw=False)
            return
        if countdown:
            timer = threading.Timer(countdown, lambda: _pool.get().submit(_run_inprocess, task, args, kwargs, context))
            timer.daemon = True
            timer.start()
        else:
            _pool.get().submit(_run_inprocess, task, args, kwargs, context)

    transaction.on_commit(_send)
