"""Fixtures of the sign-in tests."""

from tests.core.conftest import cache_down  # noqa: F401 - the cache pointed at a Redis that is not there
