from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.fields import EncryptedTextField

#: Upper bounds an admin can set: a call (every attempt and wait included) must finish well inside
#: the ``webhooks`` task's time limit.
MAX_RETRIES_LIMIT = 10
TIMEOUT_LIMIT_S = 60


class Workflow(models.Model):
    """A business-system call a bot can make (e.g. create a ticket and tell the user its number)."""

    class Trigger(models.TextChoices):
        COMMAND = "command", _("Command (e.g. /ticket)")
        KEYWORD = "keyword", _("Keyword in the message")

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="workflows", verbose_name=_("tenant")
    )
    bot = models.ForeignKey(
        "bots.Bot",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="workflows",
        help_text=_("Empty: every bot of the tenant. A bot's own workflow wins over a tenant-wide one."),
        verbose_name=_("bot"),
    )
    name = models.CharField(max_length=200, verbose_name=_("name"))
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, default=Trigger.COMMAND, verbose_name=_("trigger")
    )
    trigger_value = models.CharField(
        max_length=200,
        help_text=_(
            "The command (one word, e.g. ticket or /ticket) or the keyword (found anywhere in the "
            "message, any case) that starts it."
        ),
        verbose_name=_("trigger value"),
    )
    url = models.URLField(
        max_length=500,
        help_text=_("The business system's endpoint (http or https); Parley POSTs JSON."),
        verbose_name=_("url"),
    )
    payload_template = models.TextField(
        blank=True,
        default="",
        help_text=_(
            "JSON with {{placeholders}}: text, user_id, user_name, conversation_id, tenant, bot, platform, "
            "language, run_id, workflow. Empty: a JSON object with all of them."
        ),
        verbose_name=_("payload template"),
    )
    reply_template = models.TextField(
        blank=True,
        default="",
        help_text=_(
            "Told to the user, with fields of the JSON response, e.g. 'Ticket {{id}} created.' or "
            "'{{data.ticket.number}}'. Empty: a short 'done' in the user's language."
        ),
        verbose_name=_("reply template"),
    )
    signing_secret = EncryptedTextField(
        blank=True, help_text=_("HMAC-SHA256 signs each call; stored encrypted."), verbose_name=_("signing secret")
    )
    confirmation_required = models.BooleanField(
        default=True, help_text=_("Ask the user to confirm before calling."), verbose_name=_("confirmation required")
    )
    max_retries = models.PositiveSmallIntegerField(
        default=3,
        help_text=f"Retries after network errors, timeouts, 429 and 5xx (0–{MAX_RETRIES_LIMIT}).",
        verbose_name=_("max retries"),
    )
    timeout_s = models.PositiveSmallIntegerField(
        default=10, help_text=f"Seconds per attempt (1–{TIMEOUT_LIMIT_S}).", verbose_name=_("timeout s")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["tenant", "name"]
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .validation import workflow_errors

        errors = workflow_errors(self)
        if errors:
            raise ValidationError(errors)


class WorkflowRun(models.Model):
    class Status(models.TextChoices):
        PENDING_CONFIRMATION = "pending_confirmation", _("Waiting for the user to confirm")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Calling the business system")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs", verbose_name=_("workflow"))
    # Deleted with its conversation (retention): its context and request body carry what the user wrote.
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.CASCADE, verbose_name=_("conversation")
    )
    inbound = models.ForeignKey(
        "conversations.InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The user's message that started it."),
        verbose_name=_("inbound"),
    )
    confirmed_by = models.ForeignKey(
        "conversations.InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The user's message that confirmed it."),
        verbose_name=_("confirmed by"),
    )
    user_id = models.CharField(
        max_length=200, blank=True, help_text=_("Who started it (only they can confirm)."), verbose_name=_("user id")
    )
    language = models.CharField(max_length=8, blank=True, verbose_name=_("language"))
    context = models.JSONField(
        default=dict, blank=True, help_text=_("The placeholder values."), verbose_name=_("context")
    )
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text=_("A pending confirmation is void after this."), verbose_name=_("expires at")
    )
    request_body = models.JSONField(default=dict, blank=True, verbose_name=_("request body"))
    response_status = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("response status"))
    response_body = models.TextField(blank=True, verbose_name=_("response body"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a worker started calling."), verbose_name=_("claimed at")
    )
    queued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When its call was last handed to the webhooks queue."),
        verbose_name=_("queued at"),
    )
    requeues = models.PositiveSmallIntegerField(
        default=0,
        help_text=_("How often the sweeper handed a lost call to the queue again."),
        verbose_name=_("requeues"),
    )
    reply = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("What the user was told about the result."),
        verbose_name=_("reply"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

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
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")

    def __str__(self) -> str:
        return f"{self.workflow} run {self.pk} ({self.status})"
