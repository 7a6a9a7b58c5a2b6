from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive. No dependencies are checked (that is /readyz)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return f"database: {exc.__class__.__name__}"
    return None


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return f"redis: {exc.__class__.__name__}"
    return None


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and (where configured) Redis answer. 503 names what failed."""
    failures = [f for f in (_check_database(), _check_redis()) if f]
    checks = {"database": "ok", "redis": "ok" if settings.REDIS_URL else "not configured"}
    for failure in failures:
        part, _, reason = failure.partition(": ")
        checks[part] = f"failing ({reason})"
    if failures:
        return JsonResponse(
            {"status": "unavailable", "failing": [f.split(":")[0] for f in failures], "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})
