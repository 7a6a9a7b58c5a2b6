"""One Redis connection pool per process for Django's cache.

Django keeps a cache backend (and with it a Redis client and connection pool) per thread. Under
ASGI every request runs on a fresh thread, so each request would open a new Redis connection —
profiling the webhook path showed 10–14 % of its time there. This pool class hands out one shared,
thread-safe pool per URL instead (redis-py pools are thread-safe and reset themselves after a fork).
"""

from __future__ import annotations

import threading
from typing import Any

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.ConnectionPool:
        key = (url, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = redis.ConnectionPool.from_url(url, **kwargs)
                cls._shared[key] = pool
            return pool
