"""Thread pools made on first use.

Parley keeps a few small pools of long-lived threads per process (in-process tasks, the webhook
lane, web-chat database work). Each is built when first needed, not at import: gunicorn imports
the application before it forks its workers, and threads do not survive a fork.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class LazyPool:
    """``pool.get()``: a ``ThreadPoolExecutor`` of ``workers()`` threads named ``prefix-N``, made once."""

    def __init__(self, prefix: str, workers: Callable[[], int]) -> None:
        self.prefix = prefix
        self.workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=max(1, self.workers()), thread_name_prefix=self.prefix)
            return self._executor

    @property
    def started(self) -> ThreadPoolExecutor | None:
        """The pool if it has been made, else None (nothing is started by asking)."""
        return self._executor
