"""Django's PostgreSQL backend with one addition: a bound on the wait for a connection where the
caller sets one (``connect_within``). ``config/settings.py`` selects it
whenever ``DATABASE_URL`` names PostgreSQL; everything else is Django's own backend."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_within: ContextVar[float | None] = ContextVar("parley_connect_within", default=None)


@contextlib.contextmanager
def connect_within(seconds: float) -> Iterator[None]:
    """New database connections opened in this block are had within ``seconds`` or fail
    (``OperationalError``)."""
    token = _within.set(seconds)
    try:
        yield
    finally:
        _within.reset(token)


def check_pools() -> None:
    """Drop the dead idle connections of every database pool of this process (one quick check each),
    so the next request gets a live one at once: after one connection was found broken, the others
    most likely died with it (a restart or failover). Without this the pool finds them one by one,
    waiting a second between each (psycopg_pool's backoff), past a webhook's budget."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        pool = getattr(conn, "pool", None)
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.check()
