"""Thread pools made on first use.

Parley keeps a few small pools of long-lived threads per process (in-process tasks, the webhook
lane, web-chat database work). Each is built when first needed, not at import: gunicorn imports
the application before it forks its workers, and threads do not survive a fork.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import connections


class LazyPool:
    """``pool.get()``: a ``ThreadPoolExecutor`` of ``workers()`` threads named ``prefix-N``, made once."""

    _all: weakref.WeakSet[LazyPool] = weakref.WeakSet()

    def __init__(self, prefix: str, workers: Callable[[], int]) -> None:
        self.prefix = prefix
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        LazyPool._all.add(self)

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=max(1, self.workers()), thread_name_prefix=self.prefix)
            return self._executor

    @property
    def started(self) -> ThreadPoolExecutor | None:
        """The pool if it has been made, else None (nothing is started by asking)."""
        return self._executor

    def close_connections(self, timeout: float = 10.0) -> None:
        """Close the database connections this pool's threads keep (for a clean shutdown, and for
        tests that drop their database afterwards). Each thread gets exactly one closing job: they
        all wait at one barrier, so no thread can take two."""
        executor = self._executor
        threads = len(getattr(executor, "_threads", ())) if executor is not None else 0
        if threads == 0:
            return
        barrier = threading.Barrier(threads)

        def close() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout)
            connections.close_all()

        for future in [executor.submit(close) for _ in range(threads)]:
            future.result(timeout + 5)

    @classmethod
    def close_all_connections(cls, timeout: float = 10.0) -> None:
        """``close_connections`` on every pool of this process."""
        for pool in list(cls._all):
            pool.close_connections(timeout)
