"""``/metrics``: the Prometheus scrape endpoint, correct with several web and worker processes.

Replaces django-prometheus' view so the page also holds Parley's scrape-time collectors (queue
depth, oldest waiting message) and, in multiprocess mode, CPU of every worker on the host.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from .metrics import exposition


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The exposition text. When ``PARLEY_METRICS_TOKEN`` is set, the scraper must send it as
    ``Authorization: Bearer <token>`` (401 otherwise). Without a token the page is served only when
    ``PARLEY_METRICS_PUBLIC`` (the embedded default, or an operator's explicit choice); production
    answers 403 saying what to set — the page names tenants and bots."""
    token = settings.PARLEY_METRICS_TOKEN
    if not token and not settings.PARLEY_METRICS_PUBLIC:
        return HttpResponse(
            "metrics need a token: set PARLEY_METRICS_TOKEN (and send it as 'Authorization: Bearer <token>'), "
            "or PARLEY_METRICS_PUBLIC=true where the network keeps /metrics private\n",
            status=403,
            content_type="text/plain",
        )
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("metrics token required\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
