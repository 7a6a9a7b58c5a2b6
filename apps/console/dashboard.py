"""The admin home page: the first-hour progress above the review dashboard's figures and charts."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.templatetags.static import static

from .getting_started import checklist_for


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Unfold's ``DASHBOARD_CALLBACK``: adds the getting-started checklist to the index context."""
    context["checklist"] = checklist_for(user=request.user)
    return context


def stylesheet(request: HttpRequest) -> str:
    """Unfold's ``STYLES`` entry: Parley's own admin styles, loaded on every admin page."""
    return static("parley/console.css")
