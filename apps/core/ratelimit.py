"""Rate limits kept in the cache (Redis in production, local memory in the embedded default).

Fixed-window counters: one key per scope, subject and window number, created with ``add`` and
counted with ``incr`` — both atomic on Redis, so every web and worker replica shares one count.
A fixed window lets a burst of up to twice the limit through at a window edge; that is acceptable
for protecting model spend and keeps each check to one or two cache round trips.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

KEY_PREFIX = "parley:rl"


@dataclass(frozen=True)
class Decision:
    """The outcome of one ``hit``: ``allowed``, the count in this window, and seconds until it resets."""

    allowed: bool
    count: int
    limit: int
    retry_after: float


def hit(scope: str, subject: str, *, limit: int, window_seconds: float, now: float | None = None) -> Decision:
    """Count one event for ``subject`` in ``scope`` and say whether it is within ``limit`` per window.

    ``limit`` 0 means unlimited (nothing is counted). Never raises for cache misses: a key that
    expired between ``add`` and ``incr`` is simply created again.
    """
    if limit <= 0:
        return Decision(True, 0, limit, 0.0)
    now = time.time() if now is None else now
    window_no = int(now // window_seconds)
    key = f"{KEY_PREFIX}:{scope}:{subject}:{window_no}"
    ttl = max(1, int(window_seconds) + 1)
    cache.add(key, 0, timeout=ttl)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=ttl)
        count = 1
    retry_after = (window_no + 1) * window_seconds - now
    return Decision(count <= limit, count, limit, retry_after)
