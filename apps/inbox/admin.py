"""Handoff settings per bot and canned replies (owners and admins of the tenant); the handoff
history, read-only (reviewers too). Agents work in the inbox (``/admin/inbox/``), not here."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin_mixins import TenantScopedAdmin

from .models import CannedReply, Handoff, HandoffSettings


@admin.register(HandoffSettings)
class HandoffSettingsAdmin(TenantScopedAdmin):
    tenant_path = "bot__tenant"
    list_display = ("bot", "enabled", "opens_at", "closes_at", "open_days", "idle_timeout_minutes")
    fieldsets = (
        (None, {"fields": ("bot", "enabled", "phrases")}),
        (_("Opening hours"), {"fields": ("opens_at", "closes_at", "open_days", "timezone", "idle_timeout_minutes")}),
        (_("Team notification"), {"fields": ("notify_channel", "notify_chat_id")}),
    )


@admin.register(CannedReply)
class CannedReplyAdmin(TenantScopedAdmin):
    list_display = ("title", "tenant", "bot")
    search_fields = ("title", "text")


@admin.register(Handoff)
class HandoffAdmin(TenantScopedAdmin):
    reviewer_can_view = True
    read_only = True
    list_display = ("id", "bot", "state", "reason", "agent", "requested_at", "claimed_at", "resolved_at")
    list_filter = ("state", "reason")
    date_hierarchy = "requested_at"
    fields = (
        "conversation",
        "bot",
        "state",
        "reason",
        "agent",
        "summary",
        "language",
        "requested_at",
        "claimed_at",
        "first_reply_at",
        "resolved_at",
        "ended_by",
    )
    readonly_fields = fields
