"""The admin home page: the first-hour progress and the handoff times above the review dashboard's
figures and charts."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _

from apps.inbox.selectors import handoff_figures
from apps.inbox.services import handoff_tenant_ids

from .getting_started import checklist_for


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Unfold's ``DASHBOARD_CALLBACK``: adds the getting-started checklist to the index context."""
    context["checklist"] = checklist_for(user=request.user)
    ids = handoff_tenant_ids(request.user)
    if ids is None or ids:
        figures = handoff_figures(tenant_ids=ids)
        context["handoff"] = figures
        context["handoff_tables"] = [("agents", _("Agent"), figures["agents"]), ("bots", _("Bot"), figures["bots"])]
    return context


def stylesheet(request: HttpRequest) -> str:
    """Unfold's ``STYLES`` entry: Parley's own admin styles, loaded on every admin page."""
    return static("parley/console.css")
