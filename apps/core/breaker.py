"""Fail fast on a dependency that is known to be away (a circuit breaker, per process).

The webhook path must answer within a platform's patience (Slack: 3 s) whatever Redis or
PostgreSQL do. A dependency that stopped answering costs its full timeout on every call; once one
call has failed, the callers here skip it for ``cooldown`` seconds instead (the breaker is
*open*), then try it again with the next call. What they do meanwhile is theirs to say: the
webhook stores the message and leaves the queueing to the sweeper when Redis is away, and answers
503 at once when PostgreSQL is.

Two breakers: ``redis`` (the cache and the task queue on the webhook path) and ``database``.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)


class Breaker:
    def __init__(self, name: str, cooldown: float) -> None:
        self.name = name
        self.cooldown = cooldown
        self._open_until = 0.0
        self._lock = threading.Lock()
        self.trips = 0

    def is_open(self) -> bool:
        """True while the dependency is presumed away (skip it)."""
        return time.monotonic() < self._open_until

    def trip(self, exc: BaseException | None = None) -> None:
        """A call failed: skip the dependency for the next ``cooldown`` seconds."""
        with self._lock:
            was_open = self.is_open()
            self._open_until = time.monotonic() + self.cooldown
            self.trips += 1
        if not was_open:
            logger.warning(
                "%s unreachable (%s): skipped for %.0f s",
                self.name,
                type(exc).__name__ if exc is not None else "error",
                self.cooldown,
                extra={"dependency": self.name},
            )

    def reset(self) -> None:
        with self._lock:
            self._open_until = 0.0


#: Redis on the webhook path (rate limits, the newest-message marker, publishing the task).
redis = Breaker("redis", cooldown=5.0)
#: PostgreSQL on the webhook path (storing the message).
database = Breaker("database", cooldown=1.0)
