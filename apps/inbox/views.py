"""The agents' inbox inside the admin (``/admin/inbox/``): the page, and the small JSON endpoints
its script calls. Thin: each reads through ``selectors`` or writes through one ``services`` call;
``HandoffError`` becomes ``{"error": …}`` with its status (never a 500 for bad input)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services


def may_use_inbox(user: Any) -> bool:
    ids = services.handoff_tenant_ids(user)
    return ids is None or bool(ids)


def inbox_view(view: Callable) -> Callable:
    """The admin's sign-in and staff check, then the inbox's own: agents, owners and admins only."""

    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_use_inbox(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return admin.site.admin_view(checked)(request, *args, **kwargs)

    return wrapped


def _error(exc: services.HandoffError) -> JsonResponse:
    return JsonResponse({"error": exc.message}, status=exc.status)


@require_GET
def inbox_page(request: HttpRequest) -> HttpResponse:
    texts = {
        "waiting": _("Waiting"),
        "held_by_you": _("You are handling it"),
        "held_by": _("Handled by %(name)s"),
        "under_a_minute": _("waiting < 1 min"),
        "minutes": _("waiting %(n)s min"),
        "user": _("User"),
        "bot": _("Bot"),
        "live": _("live"),
        "reconnecting": _("reconnecting…"),
        "failed": _("That did not work. Please try again."),
    }
    context = {**admin.site.each_context(request), "title": _("Inbox"), "inbox_texts": texts}
    return TemplateResponse(request, "inbox/inbox.html", context)


@require_GET
def queue(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"handoffs": selectors.queue_for(request.user)})


@require_GET
def detail(request: HttpRequest, handoff_id: int) -> JsonResponse:
    try:
        handoff = services.handoff_for(request.user, handoff_id)
    except services.HandoffError as exc:
        return _error(exc)
    return JsonResponse(
        {
            "handoff": selectors.handoff_row(handoff, user=request.user),
            "messages": selectors.transcript(handoff),
            "canned": selectors.canned_replies(handoff),
        }
    )


def _text(request: HttpRequest) -> str:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return ""
        return str(body.get("text", "")) if isinstance(body, dict) else ""
    return request.POST.get("text", "")


@require_POST
def act(request: HttpRequest, handoff_id: int, action: str) -> JsonResponse:
    user = request.user
    try:
        if action == "claim":
            services.handoff_claim(handoff_id=handoff_id, user=user, request=request)
        elif action == "reply":
            services.handoff_reply(handoff_id=handoff_id, user=user, text=_text(request), request=request)
        elif action == "resolve":
            services.handoff_resolve(handoff_id=handoff_id, user=user, request=request)
        elif action == "draft":
            return JsonResponse({"draft": services.handoff_draft(handoff_id=handoff_id, user=user)})
        else:
            return JsonResponse({"error": _("Unknown action.")}, status=404)
        handoff = services.handoff_for(user, handoff_id)
    except services.HandoffError as exc:
        return _error(exc)
    return JsonResponse({"handoff": selectors.handoff_row(handoff, user=user)})
