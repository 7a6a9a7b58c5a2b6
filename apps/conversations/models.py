from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    """A session keyed by channel + chat + user (one per chat in group chats). Its context lives here."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="conversations")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="conversations")
    channel = models.ForeignKey("im_channels.Channel", on_delete=models.CASCADE, related_name="conversations")
    chat_id = models.CharField(max_length=200)
    user_id = models.CharField(max_length=200, blank=True, help_text="Empty for group conversations.")
    user_name = models.CharField(max_length=200, blank=True)
    is_group = models.BooleanField(default=False)
    language = models.CharField(max_length=8, blank=True)
    language_pinned = models.BooleanField(
        default=False, help_text="Set by /lang: answer in this language whatever the user writes in."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    flagged = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_activity_at = models.DateTimeField(auto_now_add=True, db_index=True)

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
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        SYSTEM = "system", "System"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    inbound = models.ForeignKey(
        "InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        help_text="The inbound message this turn came from or answers.",
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    author_id = models.CharField(max_length=200, blank=True, help_text="The end user who wrote it (group chats).")
    author_name = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Answer figures (assistant messages).
    model_config = models.ForeignKey(
        "llm.ModelConfig", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_name = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=16, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    attempts = models.JSONField(default=list, blank=True, help_text="Every model attempt: model, outcome, latency.")
    knowledge_sources = models.JSONField(
        default=list,
        blank=True,
        help_text="Knowledge-base passages the answer was given: number, document, section, scores.",
    )
    fallback_used = models.BooleanField(default=False)
    cached = models.BooleanField(default=False)
    source = models.CharField(max_length=16, blank=True, help_text="model, knowledge, cache, command, system.")
    failed = models.BooleanField(default=False)
    interrupted = models.BooleanField(default=False)
    delivered_at = models.DateTimeField(null=True, blank=True)
    platform_message_id = models.CharField(max_length=200, blank=True)
    # Delivery apart from the message's claims (apps/conversations/delivery.py): a reply the platform
    # did not take at once is handed over (pending) and retried with growing backoff for hours.
    delivery_state = models.CharField(
        _("delivery"), max_length=10, choices=DeliveryState.choices, default=DeliveryState.INLINE, blank=True
    )
    delivery_attempts = models.PositiveIntegerField(_("delivery attempts"), default=0)
    next_delivery_at = models.DateTimeField(_("next delivery attempt"), null=True, blank=True)
    delivery_error = models.TextField(_("delivery error"), blank=True)
    # Review.
    flagged = models.BooleanField(default=False)
    correction = models.TextField(blank=True, help_text="The answer a reviewer says it should have been.")

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
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        ANSWERED = "answered", "Answered"
        MERGED = "merged", "Merged into a later message"
        INTERRUPTED = "interrupted", "Interrupted by a newer message"
        RATE_LIMITED = "rate_limited", "Refused by a rate limit"
        IGNORED = "ignored", "Ignored"
        HELD = "held", "Held for a person (human handoff)"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey("im_channels.Channel", on_delete=models.CASCADE, related_name="inbound")
    platform_message_id = models.CharField(max_length=200)
    chat_id = models.CharField(max_length=200)
    user_id = models.CharField(max_length=200, blank=True)
    user_name = models.CharField(max_length=200, blank=True)
    is_group = models.BooleanField(default=False)
    text = models.TextField(blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="The platform's payload (minus secrets).")
    reply_context = models.JSONField(default=dict, blank=True, help_text="What the adapter needs to reply.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    interrupts = models.BooleanField(
        default=True, help_text="A newer message that makes its sender's answer in progress obsolete (not a command)."
    )
    refused_by = models.CharField(
        max_length=8, blank=True, help_text="The rate limit that refused it when it arrived: user or bot."
    )
    error = models.TextField(blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound"
    )
    reply = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "platform_message_id"], name="uniq_inbound_per_channel"),
        ]
        indexes = [
            models.Index(fields=["status", "claimed_at"], name="inbound_sweep_idx"),
            models.Index(fields=["channel", "chat_id", "user_id"], name="inbound_sender_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.platform_message_id} ({self.status})"


class Feedback(models.Model):
    """An end user's rating of one answer (1–5 stars, or thumbs: up = 5, down = 1)."""

    class Source(models.TextChoices):
        PAGE = "page", "Feedback page"
        BUTTON = "button", "Inline button"

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True, max_length=2000)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.PAGE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"{self.rating}★ on message {self.message_id}"
