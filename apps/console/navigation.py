"""The admin sidebar, grouped by task rather than by Django app.

``sidebar`` is Unfold's ``SIDEBAR["navigation"]`` callback. Each model entry shows only when its
ModelAdmin grants the user the module and view permission (the tenant-scoped admins decide), so a
reviewer sees the review pages and not the settings. Internals (inbound messages, single messages,
permission groups) are listed for superusers only; a model registered later by another app and not
named here still appears, under Settings, so nothing becomes unreachable.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

#: (group title, icon, entries); an entry is ("app_label.model", icon) or ("url:<name>", icon, title).
GROUPS: list[tuple[Any, list[tuple]]] = [
    (
        _("Overview"),
        [
            ("url:admin:index", "dashboard", _("Dashboard")),
            ("url:console:getting_started", "rocket_launch", _("Getting started")),
        ],
    ),
    (_("Bots"), [("bots.bot", "smart_toy")]),
    (_("Knowledge"), [("bots.knowledgeentry", "menu_book")]),
    (_("Channels"), [("im_channels.channel", "hub")]),
    (
        _("Models"),
        [("llm.modelconfig", "psychology"), ("url:admin:llm_modelconfig_usage", "payments", _("AI usage and cost"))],
    ),
    (
        _("Conversations and review"),
        [
            ("url:inbox:inbox", "support_agent", _("Inbox")),
            ("conversations.conversation", "forum"),
            ("conversations.feedback", "thumb_up"),
            ("conversations.undeliveredreply", "outbox"),
            ("inbox.cannedreply", "quickreply"),
            ("inbox.handoffsettings", "schedule"),
        ],
    ),
    (_("Workflows"), [("workflows.workflow", "account_tree"), ("workflows.workflowrun", "history")]),
    (_("Tenants and people"), [("tenants.tenant", "domain"), ("tenants.membership", "badge"), ("auth.user", "person")]),
    (_("Settings"), [("core.auditlog", "policy")]),
]

#: Tables that serve the machinery, not the business: superusers only.
INTERNALS = {"conversations.inboundmessage", "conversations.message", "auth.group"}


def _model_item(request: Any, label: str, icon: str) -> dict | None:
    for model, model_admin in admin.site._registry.items():
        if model._meta.label_lower != label:
            continue
        if label in INTERNALS and not request.user.is_superuser:
            return None
        if not (model_admin.has_module_permission(request) and model_admin.has_view_or_change_permission(request)):
            return None
        opts = model._meta
        return {
            "title": capfirst(opts.verbose_name_plural),
            "icon": icon,
            "link": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        }
    return None


def _url_item(request: Any, name: str, icon: str, title: Any) -> dict | None:
    if name == "admin:llm_modelconfig_usage":
        from apps.llm.models import ModelConfig

        model_admin = admin.site._registry.get(ModelConfig)
        if model_admin is None or not model_admin.has_view_permission(request):
            return None
    if name == "inbox:inbox":
        from apps.inbox.views import may_use_inbox

        if not may_use_inbox(request.user):
            return None
    try:
        return {"title": title, "icon": icon, "link": reverse(name)}
    except NoReverseMatch:
        return None


def sidebar(request: Any) -> list[dict]:
    """Unfold navigation groups for ``request.user``; empty groups are hidden by the theme."""
    named = set()
    groups = []
    for title, entries in GROUPS:
        items = []
        for entry in entries:
            key = entry[0]
            if key.startswith("url:"):
                item = _url_item(request, key[4:], entry[1], entry[2])
            else:
                named.add(key)
                item = _model_item(request, key, entry[1])
            if item:
                items.append(item)
        groups.append({"title": title, "separator": bool(groups), "items": items})
    extra = []
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label_lower):
        label = model._meta.label_lower
        if label not in named:
            item = _model_item(request, label, "table")
            if item:
                extra.append(item)
    groups[-1]["items"].extend(extra)
    return groups
