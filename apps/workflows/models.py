from django.core.exceptions import ValidationError
from django.db import models

from apps.core.fields import EncryptedTextField

#: Upper bounds an admin can set: a call (every attempt and wait included) must finish well inside
#: the ``webhooks`` task's time limit.
MAX_RETRIES_LIMIT = 10
TIMEOUT_LIMIT_S = 60


class Workflow(models.Model):
    """A business-system call a bot can make (e.g. create a ticket and tell the user its number)."""

    class Trigger(models.TextChoices):
        COMMAND = "command", "Command (e.g. /ticket)"
        KEYWORD = "keyword", "Keyword in the message"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="workflows")
    bot = models.ForeignKey(
        "bots.Bot",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="workflows",
        help_text="Empty: every bot of the tenant. A bot's own workflow wins over a tenant-wide one.",
    )
    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.COMMAND)
    trigger_value = models.CharField(
        max_length=200,
        help_text="The command (one word, e.g. ticket or /ticket) or the keyword (found anywhere in the "
        "message, any case) that starts it.",
    )
    url = models.URLField(
        max_length=500, help_text="The business system's endpoint (http or https); Parley POSTs JSON."
    )
    payload_template = models.TextField(
        blank=True,
        default="",
        help_text="JSON with {{placeholders}}: text, user_id, user_name, conversation_id, tenant, bot, platform, "
        "language, run_id, workflow. Empty: a JSON object with all of them.",
    )
    reply_template = models.TextField(
        blank=True,
        default="",
        help_text="Told to the user, with fields of the JSON response, e.g. 'Ticket {{id}} created.' or "
        "'{{data.ticket.number}}'. Empty: a short 'done' in the user's language.",
    )
    signing_secret = EncryptedTextField(blank=True, help_text="HMAC-SHA256 signs each call; stored encrypted.")
    confirmation_required = models.BooleanField(default=True, help_text="Ask the user to confirm before calling.")
    max_retries = models.PositiveSmallIntegerField(
        default=3, help_text=f"Retries after network errors, timeouts, 429 and 5xx (0–{MAX_RETRIES_LIMIT})."
    )
    timeout_s = models.PositiveSmallIntegerField(default=10, help_text=f"Seconds per attempt (1–{TIMEOUT_LIMIT_S}).")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .validation import workflow_errors

        errors = workflow_errors(self)
        if errors:
            raise ValidationError(errors)


class WorkflowRun(models.Model):
    class Status(models.TextChoices):
        PENDING_CONFIRMATION = "pending_confirmation", "Waiting for the user to confirm"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Calling the business system"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    # Deleted with its conversation (retention): its context and request body carry what the user wrote.
    conversation = models.ForeignKey("conversations.Conversation", null=True, blank=True, on_delete=models.CASCADE)
    inbound = models.ForeignKey(
        "conversations.InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The user's message that started it.",
    )
    confirmed_by = models.ForeignKey(
        "conversations.InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The user's message that confirmed it.",
    )
    user_id = models.CharField(max_length=200, blank=True, help_text="Who started it (only they can confirm).")
    language = models.CharField(max_length=8, blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="The placeholder values.")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="A pending confirmation is void after this.")
    request_body = models.JSONField(default=dict, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker started calling.")
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its call was last handed to the webhooks queue."
    )
    requeues = models.PositiveSmallIntegerField(
        default=0, help_text="How often the sweeper handed a lost call to the queue again."
    )
    reply = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="What the user was told about the result.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["conversation", "status"], name="wfrun_conv_status_idx"),
            # The sweeper's look for lost calls reads the few unfinished runs, never the history.
            models.Index(
                fields=["status"], condition=models.Q(status__in=["queued", "running"]), name="wfrun_unfinished_idx"
            ),
        ]
        constraints = [
            # A message starts at most one run, however often it is handled (re-driven after a crash).
            models.UniqueConstraint(
                fields=["inbound"], condition=models.Q(inbound__isnull=False), name="uniq_wfrun_per_inbound"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow} run {self.pk} ({self.status})"
