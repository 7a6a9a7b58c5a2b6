from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    """A session keyed by channel + chat + user (one per chat in group chats). Its context lives here."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="conversations", verbose_name=_("tenant")
    )
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="conversations", verbose_name=_("bot"))
    channel = models.ForeignKey(
        "im_channels.Channel", on_delete=models.CASCADE, related_name="conversations", verbose_name=_("channel")
    )
    chat_id = models.CharField(max_length=200, verbose_name=_("chat id"))
    user_id = models.CharField(
        max_length=200, blank=True, help_text=_("Empty for group conversations."), verbose_name=_("user id")
    )
    user_name = models.CharField(max_length=200, blank=True, verbose_name=_("user name"))
    is_group = models.BooleanField(default=False, verbose_name=_("is group"))
    language = models.CharField(max_length=8, blank=True, verbose_name=_("language"))
    language_pinned = models.BooleanField(
        default=False,
        help_text=_("Set by /lang: answer in this language whatever the user writes in."),
        verbose_name=_("language pinned"),
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, verbose_name=_("status"))
    flagged = models.BooleanField(default=False, verbose_name=_("flagged"))
    started_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("started at"))
    last_activity_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("last activity at"))

    class Meta:
        ordering = ["-last_activity_at"]
        indexes = [models.Index(fields=["channel", "chat_id", "user_id", "status"], name="conv_session_idx")]
        constraints = [
            # One active session per channel + chat + user: concurrent first messages share it.
            models.UniqueConstraint(
                fields=["channel", "chat_id", "user_id"],
                condition=models.Q(status="active"),
                name="uniq_active_conversation",
            ),
        ]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel_id}:{self.chat_id}"


class DeliveryState(models.TextChoices):
    """Where a reply stands with its platform."""

    INLINE = "", _("sent with the answer")
    PENDING = "pending", _("waiting for a retry")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("refused by the platform")
    EXPIRED = "expired", _("given up after retrying")


class Message(models.Model):
    """One turn: what a user said, or what the bot answered with the figures of how it got there."""

    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")
        SYSTEM = "system", _("System")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", verbose_name=_("conversation")
    )
    inbound = models.ForeignKey(
        "InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        help_text=_("The inbound message this turn came from or answers."),
        verbose_name=_("inbound"),
    )
    role = models.CharField(max_length=16, choices=Role.choices, verbose_name=_("role"))
    text = models.TextField(verbose_name=_("text"))
    author_id = models.CharField(
        max_length=200, blank=True, help_text=_("The end user who wrote it (group chats)."), verbose_name=_("author id")
    )
    author_name = models.CharField(max_length=200, blank=True, verbose_name=_("author name"))
    language = models.CharField(max_length=8, blank=True, verbose_name=_("language"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))
    # Answer figures (assistant messages).
    model_config = models.ForeignKey(
        "llm.ModelConfig",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("model config"),
    )
    model_name = models.CharField(max_length=200, blank=True, verbose_name=_("model name"))
    provider = models.CharField(max_length=16, blank=True, verbose_name=_("provider"))
    latency_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("latency ms"))
    tokens_in = models.PositiveIntegerField(default=0, verbose_name=_("tokens in"))
    tokens_out = models.PositiveIntegerField(default=0, verbose_name=_("tokens out"))
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0, verbose_name=_("cost"))
    attempts = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Every model attempt: model, outcome, latency."),
        verbose_name=_("attempts"),
    )
    knowledge_sources = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Knowledge-base passages the answer was given: number, document, section, scores."),
        verbose_name=_("knowledge sources"),
    )
    tool_calls = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Tools the model called for this answer, round by round: tool, arguments, outcome, latency."),
        verbose_name=_("tool calls"),
    )
    fallback_used = models.BooleanField(default=False, verbose_name=_("fallback used"))
    cached = models.BooleanField(default=False, verbose_name=_("cached"))
    source = models.CharField(
        max_length=16, blank=True, help_text=_("model, knowledge, cache, command, system."), verbose_name=_("source")
    )
    failed = models.BooleanField(default=False, verbose_name=_("failed"))
    interrupted = models.BooleanField(default=False, verbose_name=_("interrupted"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    platform_message_id = models.CharField(max_length=200, blank=True, verbose_name=_("platform message id"))
    # Delivery apart from the message's claims (apps/conversations/delivery.py): a reply the platform
    # did not take at once is handed over (pending) and retried with growing backoff for hours.
    delivery_state = models.CharField(
        _("delivery"), max_length=10, choices=DeliveryState.choices, default=DeliveryState.INLINE, blank=True
    )
    delivery_attempts = models.PositiveIntegerField(_("delivery attempts"), default=0)
    next_delivery_at = models.DateTimeField(_("next delivery attempt"), null=True, blank=True)
    delivery_error = models.TextField(_("delivery error"), blank=True)
    # Review.
    flagged = models.BooleanField(default=False, verbose_name=_("flagged"))
    correction = models.TextField(
        blank=True, help_text=_("The answer a reviewer says it should have been."), verbose_name=_("correction")
    )

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("reveal_pii", "Can reveal unmasked personal data in conversation review")]
        indexes = [
            # The delivery sweeper's lookup of due retries (a partial index: only replies handed over).
            models.Index(
                fields=["next_delivery_at"],
                name="message_delivery_due_idx",
                condition=models.Q(delivery_state="pending"),
            ),
        ]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class UndeliveredReply(Message):
    """Replies their platform has not taken (waiting for a retry, refused, or given up): the admin's
    list of them, with "retry now" (apps/conversations/delivery.py)."""

    class Meta:
        proxy = True
        verbose_name = _("undelivered reply")
        verbose_name_plural = _("undelivered replies")


class InboundMessage(models.Model):
    """A platform message as received, stored before the webhook is acknowledged.

    Moves received → processing → answered | failed (or a terminal status saying why it got no
    model answer). Unique per channel + platform message id, so redeliveries are accepted once.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSING = "processing", _("Processing")
        ANSWERED = "answered", _("Answered")
        MERGED = "merged", _("Merged into a later message")
        INTERRUPTED = "interrupted", _("Interrupted by a newer message")
        RATE_LIMITED = "rate_limited", _("Refused by a rate limit")
        IGNORED = "ignored", _("Ignored")
        HELD = "held", _("Held for a person (human handoff)")
        FAILED = "failed", _("Failed")

    channel = models.ForeignKey(
        "im_channels.Channel", on_delete=models.CASCADE, related_name="inbound", verbose_name=_("channel")
    )
    platform_message_id = models.CharField(max_length=200, verbose_name=_("platform message id"))
    chat_id = models.CharField(max_length=200, verbose_name=_("chat id"))
    user_id = models.CharField(max_length=200, blank=True, verbose_name=_("user id"))
    user_name = models.CharField(max_length=200, blank=True, verbose_name=_("user name"))
    is_group = models.BooleanField(default=False, verbose_name=_("is group"))
    text = models.TextField(blank=True, verbose_name=_("text"))
    raw = models.JSONField(
        default=dict, blank=True, help_text=_("The platform's payload (minus secrets)."), verbose_name=_("raw")
    )
    reply_context = models.JSONField(
        default=dict, blank=True, help_text=_("What the adapter needs to reply."), verbose_name=_("reply context")
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True, verbose_name=_("status")
    )
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    interrupts = models.BooleanField(
        default=True,
        help_text=_("A newer message that makes its sender's answer in progress obsolete (not a command)."),
        verbose_name=_("interrupts"),
    )
    refused_by = models.CharField(
        max_length=8,
        blank=True,
        help_text=_("The rate limit that refused it when it arrived: user or bot."),
        verbose_name=_("refused by"),
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    trace_id = models.CharField(max_length=64, blank=True, verbose_name=_("trace id"))
    conversation = models.ForeignKey(
        Conversation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound",
        verbose_name=_("conversation"),
    )
    reply = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("reply")
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("received at"))
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "platform_message_id"], name="uniq_inbound_per_channel"),
        ]
        indexes = [
            models.Index(fields=["status", "claimed_at"], name="inbound_sweep_idx"),
            models.Index(fields=["channel", "chat_id", "user_id"], name="inbound_sender_idx"),
        ]
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.platform_message_id} ({self.status})"


class Feedback(models.Model):
    """An end user's rating of one answer (1–5 stars, or thumbs: up = 5, down = 1)."""

    class Source(models.TextChoices):
        PAGE = "page", _("Feedback page")
        BUTTON = "button", _("Inline button")

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("message")
    )
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)], verbose_name=_("rating")
    )
    comment = models.TextField(blank=True, max_length=2000, verbose_name=_("comment"))
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.PAGE, verbose_name=_("source"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name_plural = _("feedback")
        verbose_name = _("feedback")

    def __str__(self) -> str:
        return f"{self.rating}★ on message {self.message_id}"
