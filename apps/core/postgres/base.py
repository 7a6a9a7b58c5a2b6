"""``DatabaseWrapper``: Django's PostgreSQL wrapper, its wait for a new connection bounded in a
``connect_within(seconds)`` block.

With PostgreSQL away, getting a connection from the pool waits ``DB_POOL_TIMEOUT`` (10 s) before
it fails — fine for a worker, far too long for a webhook (Slack gives up after 3 s and sends the
event again). The webhook path asks for its connection within ``PARLEY_WEBHOOK_DB_WAIT`` instead
and answers 503 when it cannot have one (apps/channels/views.py), so the platform retries later.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from . import _within


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        limit = _within.get()
        if limit is not None:
            pool = self.pool
            if pool is not None:
                # Ask the pool within the limit first (psycopg_pool's PoolTimeout, an
                # OperationalError, when it has nothing to give), then let Django take the
                # connection that was just handed back, as usual.
                pool.open()
                pool.putconn(pool.getconn(timeout=limit))
            else:
                conn_params = {**conn_params, "connect_timeout": max(1, round(limit))}
        return super().get_new_connection(conn_params)
