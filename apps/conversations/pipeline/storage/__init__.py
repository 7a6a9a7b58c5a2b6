"""The pipeline's storage: one interface (``Storage``), two implementations.

``storage()`` is the only place that asks which database Parley runs on.
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from .base import MAX_ATTEMPTS, Snapshot, Storage, lease_seconds

__all__ = ["MAX_ATTEMPTS", "Snapshot", "Storage", "lease_seconds", "storage"]


def storage() -> Storage:
    """PostgreSQL's single statements on PostgreSQL, the portable ORM everywhere else."""
    return _storage(connection.vendor)


@cache
def _storage(vendor: str) -> Storage:
    if vendor == "postgresql":
        from .postgres import PostgresStorage

        return PostgresStorage()
    from .orm import OrmStorage

    return OrmStorage()
