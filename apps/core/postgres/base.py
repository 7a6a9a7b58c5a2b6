"""``DatabaseWrapper``: Django's PostgreSQL wrapper, its wait for a new connection bounded in a
``connect_within(seconds)`` block.

With PostgreSQL away, getting a connection from the pool waits ``DB_POOL_TIMEOUT`` (10 s) before
it fails — fine for a worker, far too long for a webhook (Slack gives up after 3 s and sends the
event again). The webhook path asks for its connection within ``PARLEY_WEBHOOK_DB_WAIT`` instead
and answers 503 when it cannot have one (apps/channels/views.py), so the platform retries later.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from . import _within


class _BoundedPool:
    """The process's pool as one bounded connect sees it: ``getconn`` waits at most ``timeout``."""

    def __init__(self, pool: Any, timeout: float) -> None:
        self._pool, self._timeout = pool, timeout

    def getconn(self, timeout: float | None = None) -> Any:
        return self._pool.getconn(self._timeout if timeout is None else timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class DatabaseWrapper(base.DatabaseWrapper):
    # A wrapper belongs to one thread (Django keeps one per thread), so this is that thread's bound.
    _bound: float | None = None

    @property
    def pool(self):
        pool = super().pool
        if pool is not None and self._bound is not None:
            return _BoundedPool(pool, self._bound)
        return pool

    def get_new_connection(self, conn_params):
        limit = _within.get()
        if limit is None:
            return super().get_new_connection(conn_params)
        if self.settings_dict["OPTIONS"].get("pool") is None:
            conn_params = {**conn_params, "connect_timeout": max(1, round(limit))}
        self._bound = limit
        try:
            return super().get_new_connection(conn_params)
        finally:
            self._bound = None
