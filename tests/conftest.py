"""Shared fixtures. Tests use real PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set
(CI sets them), the embedded defaults otherwise."""

from __future__ import annotations

import contextlib
import gc
import warnings

import pytest
from django.core.cache import cache

from tests.factories import make_bot, make_channel, make_tenant, make_user
from tests.fakes.server import FakeServer


@pytest.fixture(scope="session", autouse=True)
def _close_pooled_thread_connections(django_db_setup, django_db_blocker):
    """Long-lived threads (in-process tasks, the webhook lane, web-chat database work) keep their
    database connection; they give it up before the test database is dropped. Whatever still holds
    a session on it then (a thread outside those pools, a process a test left running) is named in
    a warning and let go, so PostgreSQL can drop the database."""
    yield
    from apps.core.threads import LazyPool

    with django_db_blocker.unblock():
        for pool in list(LazyPool._all):
            try:  # one pool whose thread is stuck must not keep the others' connections open
                pool.close_connections()
            except Exception as exc:
                warnings.warn(f"{pool.prefix} threads did not give up their connections: {exc!r}", stacklevel=1)
        _let_go_of_the_test_database()


def _let_go_of_the_test_database() -> None:
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        return
    connections.close_all()  # this thread's (returned to the pool, which Django closes before the drop)
    strays = _stray_connections(connection.settings_dict["NAME"])
    for conn in strays:
        with contextlib.suppress(Exception):
            conn.close()
    # Sessions of this process not idle in the pool, or of other processes.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, backend_start, state, left(query, 200) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
            [_pooled_backend_pids()],
        )
        others = cursor.fetchall()
        if others:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", [[row[0] for row in others]])
    connections.close_all()
    if strays or others:
        lines = [f"{len(strays)} connection(s) held by threads of the test process"] if strays else []
        lines += [
            f"session {pid} ({app or 'no name'}, since {start:%H:%M:%S}, {state}): {query}"
            for pid, app, start, state, query in others
        ]
        warnings.warn(
            "still connected to the test database at the end (closed now):\n" + "\n".join(lines), stacklevel=1
        )


def _pooled_backend_pids() -> list[int]:
    """Backends of the connections idle in this process's pools (closed by Django before the drop)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    pids = []
    for pool in DatabaseWrapper._connection_pools.values():
        for conn in list(getattr(pool, "_pool", ())):
            with contextlib.suppress(Exception):
                pids.append(conn.info.backend_pid)
    return pids


def _stray_connections(dbname: str) -> list:
    """Open psycopg connections of this process to ``dbname`` that no pool holds idle (a thread's own)."""
    import psycopg
    from django.db.backends.postgresql.base import DatabaseWrapper

    idle = {id(c) for pool in DatabaseWrapper._connection_pools.values() for c in list(getattr(pool, "_pool", ()))}
    strays = []
    for obj in gc.get_objects():
        with contextlib.suppress(Exception):  # (a weak proxy whose object is gone raises on any look)
            if (
                isinstance(obj, psycopg.Connection)
                and not obj.closed
                and id(obj) not in idle
                and obj.info.dbname == dbname
            ):
                strays.append(obj)
    return strays


@pytest.fixture(autouse=True)
def _eager_tasks(settings):
    """Background tasks run on the committing thread unless a test asks for Celery."""
    settings.TASKS_MODE = "eager"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 at production strength costs seconds per login on a busy CI machine; tests don't need it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    from apps.channels.services import forget_channels

    cache.clear()
    forget_channels()  # rows rolled back between tests send no signal
    yield
    cache.clear()
    forget_channels()


@pytest.fixture
def fake_server():
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def tenant(db):
    return make_tenant("acme")


@pytest.fixture
def bot(tenant):
    return make_bot(tenant)


@pytest.fixture
def web_channel(bot):
    return make_channel(bot, platform="web", key="acme-web")


@pytest.fixture
def superuser(db):
    return make_user("root", superuser=True)
