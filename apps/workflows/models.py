from django.db import models

from apps.core.fields import EncryptedTextField


class Workflow(models.Model):
    """A business-system call a bot can make (e.g. create a ticket and tell the user its number)."""

    class Trigger(models.TextChoices):
        COMMAND = "command", "Command (e.g. /ticket)"
        KEYWORD = "keyword", "Keyword in the message"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="workflows")
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.COMMAND)
    trigger_value = models.CharField(max_length=200, help_text="The command or keyword that starts it.")
    url = models.URLField(max_length=500)
    payload_template = models.TextField(blank=True, default="", help_text="JSON with {{placeholders}}.")
    reply_template = models.TextField(
        blank=True, default="", help_text="Told to the user, e.g. 'Ticket {{id}} created.'"
    )
    signing_secret = EncryptedTextField(blank=True, help_text="HMAC-SHA256 signs each call; stored encrypted.")
    confirmation_required = models.BooleanField(default=True, help_text="Ask the user to confirm before calling.")
    max_retries = models.PositiveSmallIntegerField(default=3)
    timeout_s = models.PositiveSmallIntegerField(default=10)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "name"]

    def __str__(self) -> str:
        return self.name


class WorkflowRun(models.Model):
    class Status(models.TextChoices):
        PENDING_CONFIRMATION = "pending_confirmation", "Waiting for the user to confirm"
        QUEUED = "queued", "Queued"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    conversation = models.ForeignKey("conversations.Conversation", null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.QUEUED)
    request_body = models.JSONField(default=dict, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.workflow} run {self.pk} ({self.status})"
