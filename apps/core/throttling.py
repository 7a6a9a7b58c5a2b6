"""The API's request throttles, failing open when the cache (Redis) cannot be reached.

DRF's throttles keep their request history in the cache. With Redis away, the stock classes raise
on every request, so the whole API — the token endpoint included — would answer 500. These let the
request through and log a warning (once a minute per process): an outage of the cache is not a
reason to refuse staff, and the rest of the API (database-backed) still works.
"""

from __future__ import annotations

import logging
import time

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)

_WARN_EVERY_S = 60.0
_last_warning = 0.0


def _warn(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_S:
        _last_warning = now
        logger.warning("API throttling skipped: the cache is unreachable (%s)", type(exc).__name__)


class FailOpenMixin:
    def allow_request(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception as exc:  # redis.ConnectionError, TimeoutError, …: whatever the backend raises
            _warn(exc)
            return True


class UserThrottle(FailOpenMixin, UserRateThrottle):
    """Requests per signed-in user (``API_RATE_USER``)."""


class AnonThrottle(FailOpenMixin, AnonRateThrottle):
    """Requests per client address without sign-in (``API_RATE_ANON``)."""
