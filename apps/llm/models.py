from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core import netguard
from apps.core.fields import EncryptedTextField


def default_timeout() -> Decimal:
    """A new model's first-token timeout: ``AI_FALLBACK_TIMEOUT`` (3 s unless set)."""
    return Decimal(str(settings.AI_FALLBACK_TIMEOUT)).quantize(Decimal("0.01"))


class ModelConfig(models.Model):
    """One AI model a tenant can use: where it is, how to call it, what it costs."""

    class Provider(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible (OpenAI, GLM, DeepSeek, Qwen, Moonshot, Ollama, vLLM, Azure)"
        ANTHROPIC = "anthropic", "Anthropic"
        BUILTIN = "builtin", "Built-in (knowledge entries only, no API key)"

    class Tier(models.TextChoices):
        LIGHT = "light", "Light — simple Q&A, under 0.5 s"
        GENERAL = "general", "General — reasoning and multi-turn, 1–3 s"
        EXPERT = "expert", "Expert — domain knowledge, 2–5 s"

    class Purpose(models.TextChoices):
        CHAT = "chat", "Chat (answers)"
        EMBEDDING = "embedding", "Embedding (knowledge-base retrieval, /v1/embeddings)"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=100, help_text="Short name bots refer to, e.g. 'primary'.")
    purpose = models.CharField(
        max_length=16,
        choices=Purpose.choices,
        default=Purpose.CHAT,
        help_text="Chat models answer; embedding models turn knowledge-base passages into vectors.",
    )
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.OPENAI)
    endpoint = models.URLField(max_length=500, blank=True, help_text="API base URL, e.g. https://api.openai.com/v1")
    api_key = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again in full.")
    model = models.CharField(max_length=200, blank=True, help_text="Provider's model name, e.g. glm-4-turbo.")
    api_version = models.CharField(
        max_length=32,
        blank=True,
        help_text="Azure OpenAI only, e.g. 2024-06-01. The endpoint is then the resource URL and the model "
        "name is the deployment name.",
    )
    max_tokens = models.PositiveIntegerField(
        default=2048, validators=[MinValueValidator(1), MaxValueValidator(200_000)]
    )
    temperature = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
    )
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.GENERAL)
    cost_input_per_1k = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal("0"))
    cost_output_per_1k = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal("0"))
    timeout_s = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=default_timeout,
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("300"))],
        help_text="Seconds to wait for the first token before falling back.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="uniq_model_name_per_tenant")]
        verbose_name = "model config"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display().split(' ')[0]} {self.model})".strip()

    def clean(self) -> None:
        """An endpoint the outbound guard refuses (docs/security.md "Outbound calls") is not saved."""
        super().clean()
        refused = netguard.check_url(self.endpoint) if self.endpoint else ""
        if refused:
            raise ValidationError({"endpoint": refused})
