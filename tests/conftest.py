"""Shared fixtures. Tests use real PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set
(CI sets them), the embedded defaults otherwise."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import make_bot, make_channel, make_tenant, make_user
from tests.fakes.server import FakeServer


@pytest.fixture(scope="session", autouse=True)
def _close_pooled_thread_connections(django_db_setup, django_db_blocker):
    """Long-lived threads (in-process tasks, the webhook lane, web-chat database work) keep their
    database connection; they give it up before the test database is dropped."""
    yield
    from apps.core.threads import LazyPool

    with django_db_blocker.unblock():
        LazyPool.close_all_connections()


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
