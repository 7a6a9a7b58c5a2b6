from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .logging import log_context, new_trace_id


class RequestIdMiddleware:
    """Gives each request a trace id (or keeps a sane incoming ``X-Request-ID``) for the log lines."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        trace_id = incoming if incoming.isalnum() and len(incoming) <= 64 else new_trace_id()
        request.trace_id = trace_id
        with log_context(trace_id=trace_id):
            response = self.get_response(request)
        response["X-Request-ID"] = trace_id
        return response


class SetupRedirectMiddleware:
    """Until the first superuser exists, send people opening the admin to ``/setup/``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/") and request.method == "GET":
            from .setup import setup_needed

            if setup_needed():
                return redirect("setup")
        return self.get_response(request)
