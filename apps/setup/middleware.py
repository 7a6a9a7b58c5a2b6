from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .services import setup_needed


class SetupRedirectMiddleware:
    """Until the first superuser exists, send people opening the admin to ``/setup/``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/admin/") and request.method == "GET" and setup_needed():
            return redirect("setup")
        return self.get_response(request)
