from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets

from apps.core.pii import mask_text
from apps.tenants.api import TenantScopedViewSet

from .models import Conversation, Message


def may_reveal_pii(user: Any) -> bool:
    return bool(user.is_superuser or user.has_perm("conversations.reveal_pii"))


class MaskedTextField(serializers.CharField):
    """Message text with PII masked, unless the caller may reveal it."""

    def to_representation(self, value: str) -> str:
        request = self.context.get("request")
        text = super().to_representation(value)
        return text if request is not None and may_reveal_pii(request.user) else mask_text(text)


class MessageSerializer(serializers.ModelSerializer):
    text = MaskedTextField()

    class Meta:
        model = Message
        fields = (
            "id",
            "role",
            "text",
            "author_id",
            "language",
            "created_at",
            "model_name",
            "provider",
            "latency_ms",
            "tokens_in",
            "tokens_out",
            "cost",
            "fallback_used",
            "cached",
            "source",
            "failed",
            "flagged",
        )
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    platform = serializers.CharField(source="channel.platform", read_only=True)

    class Meta:
        model = Conversation
        fields = (
            "id",
            "tenant",
            "bot",
            "channel",
            "platform",
            "chat_id",
            "is_group",
            "language",
            "status",
            "flagged",
            "started_at",
            "last_activity_at",
        )
        read_only_fields = fields


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = (*ConversationSerializer.Meta.fields, "messages")
        read_only_fields = fields


class ConversationViewSet(TenantScopedViewSet, viewsets.ReadOnlyModelViewSet):
    """Conversation logs (read-only; reviewers included). ``?bot=<id>`` filters by bot."""

    reviewer_can_read = True
    http_method_names = ["get", "head", "options"]
    queryset = Conversation.objects.select_related("channel").order_by("-last_activity_at")

    def get_serializer_class(self) -> Any:
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        bot = self.request.query_params.get("bot")
        if bot and bot.isdigit():
            qs = qs.filter(bot_id=bot)
        if self.action == "retrieve":
            qs = qs.prefetch_related("messages")
        return qs
