from django.contrib import admin

from apps.core.admin_mixins import TenantScopedAdmin

from .models import Conversation, Feedback, InboundMessage, Message


class ConversationLogAdmin(TenantScopedAdmin):
    """Conversation logs: reviewers read them; nobody but a superuser edits them."""

    reviewer_can_view = True
    read_only = True


@admin.register(Conversation)
class ConversationAdmin(ConversationLogAdmin):
    list_display = ("id", "tenant", "bot", "channel", "chat_id", "language", "status", "flagged", "last_activity_at")
    list_filter = ("tenant", "bot", "channel__platform", "status", "language", "flagged")
    search_fields = ("chat_id", "user_name", "messages__text")
    date_hierarchy = "started_at"


@admin.register(Message)
class MessageAdmin(ConversationLogAdmin):
    tenant_path = "conversation__tenant"
    list_display = (
        "id",
        "conversation",
        "role",
        "short_text",
        "model_name",
        "latency_ms",
        "fallback_used",
        "created_at",
    )
    list_filter = ("role", "source", "fallback_used", "failed", "flagged", "conversation__tenant")
    search_fields = ("text",)

    @admin.display(description="text")
    def short_text(self, obj: Message) -> str:
        return obj.text[:80]


@admin.register(InboundMessage)
class InboundMessageAdmin(ConversationLogAdmin):
    tenant_path = "channel__bot__tenant"
    reviewer_can_view = False
    list_display = ("id", "channel", "platform_message_id", "status", "attempts", "received_at", "finished_at")
    list_filter = ("status", "channel__platform", "channel__bot__tenant")
    search_fields = ("platform_message_id", "chat_id")
    exclude = ("raw",)


@admin.register(Feedback)
class FeedbackAdmin(ConversationLogAdmin):
    tenant_path = "message__conversation__tenant"
    list_display = ("message", "rating", "source", "created_at")
    list_filter = ("rating", "source", "message__conversation__tenant")
    search_fields = ("comment",)
