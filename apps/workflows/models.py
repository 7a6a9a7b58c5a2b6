from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.fields import EncryptedTextField, EndpointField

#: Upper bounds an admin can set: a call (every attempt and wait included) must finish well inside
#: the ``webhooks`` task's time limit.
MAX_RETRIES_LIMIT = 10
TIMEOUT_LIMIT_S = 60


class Workflow(models.Model):
    """A business-system call a bot can make (e.g. create a ticket and tell the user its number)."""

    class Trigger(models.TextChoices):
        COMMAND = "command", _("Command (e.g. /ticket)")
        KEYWORD = "keyword", _("Keyword in the message")
        TOOL = "tool", _("Tool the model may call")

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
            "The command (one word, e.g. ticket or /ticket), the keyword (found anywhere in the "
            "message, any case) that starts it, or the tool's name the model calls (e.g. create_ticket)."
        ),
        verbose_name=_("trigger value"),
    )
    description = models.TextField(
        blank=True,
        default="",
        help_text=_(
            "Tools only: what it does and when to use it, written for the model (e.g. 'Open a support "
            "ticket when the user reports a fault')."
        ),
        verbose_name=_("description"),
    )
    parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Tools only: a JSON Schema object for the arguments, e.g. {"type": "object", "properties": '
            '{"summary": {"type": "string"}}, "required": ["summary"]}. Arguments are checked against it '
            "before any call."
        ),
        verbose_name=_("parameters"),
    )
    url = EndpointField(
        max_length=500,
        help_text=_("The business system's endpoint (http or https); Parley POSTs JSON."),
        verbose_name=_("url"),
    )
    payload_template = models.TextField(
        blank=True,
        default="",
        help_text=_(
            "JSON with {{placeholders}}: text, user_id, user_name, conversation_id, tenant, bot, platform, "
            "language, run_id, workflow, arguments (a tool's arguments). Empty: a JSON object with all of them."
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
    call_key = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text=_("A tool call: the tool and its arguments, hashed (one run per message and call)."),
        verbose_name=_("call key"),
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
            # A tool call: at most one run per message and call (the same tool with the same arguments).
            models.UniqueConstraint(
                fields=["inbound", "call_key"],
                condition=models.Q(inbound__isnull=False),
                name="uniq_wfrun_per_inbound_call",
            ),
        ]
        verbose_name = _("workflow run")
        verbose_name_plural = _("workflow runs")

    def __str__(self) -> str:
        return f"{self.workflow} run {self.pk} ({self.status})"


class ToolServer(models.Model):
    """A Model Context Protocol server (streamable HTTP) whose tools the tenant's bots may call."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="tool_servers", verbose_name=_("tenant")
    )
    name = models.CharField(
        max_length=100, help_text=_("Short name bots and configuration files refer to."), verbose_name=_("name")
    )
    url = EndpointField(
        max_length=500,
        help_text=_("The server's streamable HTTP endpoint, e.g. https://tools.acme.example/mcp"),
        verbose_name=_("url"),
    )
    headers = EncryptedTextField(
        blank=True,
        help_text=_(
            'HTTP headers sent with every request, as a JSON object, e.g. {"Authorization": "Bearer …"}. '
            "Stored encrypted; never shown again."
        ),
        verbose_name=_("headers"),
    )
    timeout_s = models.PositiveSmallIntegerField(
        default=15, help_text=f"Seconds per request to the server (1–{TIMEOUT_LIMIT_S}).", verbose_name=_("timeout s")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="uniq_tool_server_name_per_tenant")]
        verbose_name = _("tool server")
        verbose_name_plural = _("tool servers")

    def __str__(self) -> str:
        return self.name

    def header_dict(self) -> dict[str, str]:
        from .validation import parse_headers

        return parse_headers(self.headers)[0]

    def clean(self) -> None:
        from .validation import tool_server_errors

        errors = tool_server_errors(self)
        if errors:
            raise ValidationError(errors)


class BotToolServer(models.Model):
    """The tools of a tool server one bot may use."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="tool_servers", verbose_name=_("bot"))
    server = models.ForeignKey(ToolServer, on_delete=models.CASCADE, related_name="bots", verbose_name=_("server"))
    tools = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            'The names of the tools the bot may call, e.g. ["lookup_order"]. Empty: every tool the server lists.'
        ),
        verbose_name=_("tools"),
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot", "server"], name="uniq_bot_tool_server")]
        verbose_name = _("bot's tools")
        verbose_name_plural = _("bots that may use its tools")

    def __str__(self) -> str:
        return f"{self.bot} → {self.server}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.bot_id and self.server_id and self.bot.tenant_id != self.server.tenant_id:
            errors["bot"] = [str(_("This bot belongs to another tenant."))]
        if not isinstance(self.tools, list) or not all(isinstance(t, str) and t for t in self.tools):
            errors["tools"] = [str(_('Enter a list of tool names, e.g. ["lookup_order"].'))]
        if errors:
            raise ValidationError(errors)
