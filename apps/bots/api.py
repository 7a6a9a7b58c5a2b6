from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.core.audit import audit_record
from apps.tenants.api import TenantField, TenantScopedViewSet
from apps.tenants.selectors import MANAGE_ROLES, tenant_ids_for

from .models import Bot, KnowledgeEntry


class BotSerializer(serializers.ModelSerializer):
    tenant = TenantField()

    class Meta:
        model = Bot
        fields = (
            "id",
            "tenant",
            "slug",
            "name",
            "enabled",
            "system_prompt",
            "greeting",
            "help_text",
            "failure_text",
            "model",
            "language_routes",
            "context_max_tokens",
            "context_max_turns",
            "idle_timeout_minutes",
            "merge_mode",
            "merge_window_ms",
            "rate_limit_per_second",
            "user_rate_limit_per_minute",
            "cache_answers",
            "cache_ttl_seconds",
            "pii_policy",
            "feedback_links",
            "retention_days",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant = attrs.get("tenant") or getattr(self.instance, "tenant", None)
        model = attrs.get("model")
        if model is not None and tenant is not None and model.tenant_id != tenant.pk:
            raise ValidationError({"model": "This model belongs to another tenant."})
        return attrs


class BotViewSet(TenantScopedViewSet):
    """Bots of your tenants. Deleting a bot deletes its channels and conversations, so it needs
    ``?confirm=<bot slug>`` — a confirmation step for a destructive operation."""

    queryset = Bot.objects.select_related("tenant", "model")
    serializer_class = BotSerializer

    def perform_destroy(self, instance: Bot) -> None:
        if self.request.query_params.get("confirm") != instance.slug:
            raise ValidationError(
                {
                    "confirm": f"Deleting a bot removes its channels and conversations. "
                    f"Repeat the request with ?confirm={instance.slug} to proceed."
                }
            )
        audit_record(
            action="bot.delete",
            actor=self.request.user,
            tenant=instance.tenant,
            target=instance.slug,
            request=self.request,
        )
        instance.delete()


class BotField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> Any:
        request = self.context.get("request")
        ids = tenant_ids_for(request.user, roles=MANAGE_ROLES) if request else set()
        qs = Bot.objects.all()
        return qs if ids is None else qs.filter(tenant_id__in=ids)


class KnowledgeEntrySerializer(serializers.ModelSerializer):
    bot = BotField()

    class Meta:
        model = KnowledgeEntry
        fields = ("id", "bot", "question", "answer", "keywords", "enabled", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")


class KnowledgeEntryViewSet(TenantScopedViewSet):
    tenant_path = "bot__tenant"
    queryset = KnowledgeEntry.objects.select_related("bot")
    serializer_class = KnowledgeEntrySerializer

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        bot = self.request.query_params.get("bot")
        return qs.filter(bot_id=bot) if bot and bot.isdigit() else qs
