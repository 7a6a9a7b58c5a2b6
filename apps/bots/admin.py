from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin_mixins import TenantScopedAdmin, TenantScopedInline

from .models import Bot, BotFallback, KnowledgeEntry


class BotFallbackInline(TenantScopedInline):
    model = BotFallback
    fields = ("position", "model")
    verbose_name = _("fallback model")
    verbose_name_plural = _("fallback models (tried in order when the primary fails or is slow)")


@admin.register(Bot)
class BotAdmin(TenantScopedAdmin):
    inlines = (BotFallbackInline,)
    list_display = ("name", "slug", "tenant", "model", "enabled", "updated_at")
    list_filter = ("enabled", "tenant", "pii_policy")
    search_fields = ("name", "slug", "system_prompt")
    fieldsets = (
        (None, {"fields": ("tenant", "slug", "name", "enabled")}),
        (_("Persona"), {"fields": ("system_prompt", "greeting", "help_text", "failure_text")}),
        (_("Models"), {"fields": ("model", "language_routes")}),
        (
            _("Conversation rules"),
            {
                "fields": (
                    "context_max_tokens",
                    "context_max_turns",
                    "idle_timeout_minutes",
                    "merge_mode",
                    "merge_window_ms",
                    "rate_limit_per_second",
                    "user_rate_limit_per_minute",
                    "cache_answers",
                    "cache_ttl_seconds",
                )
            },
        ),
        (_("Privacy and feedback"), {"fields": ("pii_policy", "retention_days", "feedback_links")}),
    )


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(TenantScopedAdmin):
    tenant_path = "bot__tenant"
    list_display = ("question", "bot", "enabled", "updated_at")
    list_filter = ("enabled", "bot__tenant", "bot")
    search_fields = ("question", "answer", "keywords")
