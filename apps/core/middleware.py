from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
