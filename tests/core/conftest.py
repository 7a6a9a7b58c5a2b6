"""Fixtures of the core tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def cache_down(settings):
    """The cache pointed at a Redis that is not there (connections refused)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/1",
            "OPTIONS": {"pool_class": "apps.core.cache.SharedConnectionPool"},
        }
    }
