from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core import netguard
from apps.core.fields import EncryptedTextField, EndpointField


def default_timeout() -> Decimal:
    """A new model's first-token timeout: ``AI_FALLBACK_TIMEOUT`` (3 s unless set)."""
    return Decimal(str(settings.AI_FALLBACK_TIMEOUT)).quantize(Decimal("0.01"))


class ModelConfig(models.Model):
    """One AI model a tenant can use: where it is, how to call it, what it costs."""

    class Provider(models.TextChoices):
        OPENAI = "openai", _("OpenAI-compatible (OpenAI, GLM, DeepSeek, Qwen, Moonshot, Ollama, vLLM, Azure)")
        ANTHROPIC = "anthropic", _("Anthropic")
        BUILTIN = "builtin", _("Built-in (knowledge entries only, no API key)")

    class Tier(models.TextChoices):
        LIGHT = "light", _("Light — simple Q&A, under 0.5 s")
        GENERAL = "general", _("General — reasoning and multi-turn, 1–3 s")
        EXPERT = "expert", _("Expert — domain knowledge, 2–5 s")

    class Purpose(models.TextChoices):
        CHAT = "chat", _("Chat (answers)")
        EMBEDDING = "embedding", _("Embedding (knowledge-base retrieval, /v1/embeddings)")

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="models", verbose_name=_("tenant")
    )
    name = models.CharField(
        max_length=100, help_text=_("Short name bots refer to, e.g. 'primary'."), verbose_name=_("name")
    )
    purpose = models.CharField(
        max_length=16,
        choices=Purpose.choices,
        default=Purpose.CHAT,
        help_text=_("Chat models answer; embedding models turn knowledge-base passages into vectors."),
        verbose_name=_("purpose"),
    )
    provider = models.CharField(
        max_length=16, choices=Provider.choices, default=Provider.OPENAI, verbose_name=_("provider")
    )
    endpoint = EndpointField(
        max_length=500,
        blank=True,
        help_text=_("API base URL, e.g. https://api.openai.com/v1"),
        verbose_name=_("endpoint"),
    )
    api_key = EncryptedTextField(
        blank=True, help_text=_("Stored encrypted; never shown again in full."), verbose_name=_("api key")
    )
    model = models.CharField(
        max_length=200, blank=True, help_text=_("Provider's model name, e.g. glm-4-turbo."), verbose_name=_("model")
    )
    api_version = models.CharField(
        max_length=32,
        blank=True,
        help_text=_(
            "Azure OpenAI only, e.g. 2024-06-01. The endpoint is then the resource URL and the model "
            "name is the deployment name."
        ),
        verbose_name=_("api version"),
    )
    max_tokens = models.PositiveIntegerField(
        default=2048, validators=[MinValueValidator(1), MaxValueValidator(200_000)], verbose_name=_("max tokens")
    )
    temperature = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.70"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
        verbose_name=_("temperature"),
    )
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.GENERAL, verbose_name=_("tier"))
    cost_input_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, default=Decimal("0"), verbose_name=_("cost input per 1k")
    )
    cost_output_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, default=Decimal("0"), verbose_name=_("cost output per 1k")
    )
    timeout_s = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=default_timeout,
        validators=[MinValueValidator(Decimal("0.1")), MaxValueValidator(Decimal("300"))],
        help_text=_("Seconds to wait for the first token before falling back."),
        verbose_name=_("timeout s"),
    )
    supports_tools = models.BooleanField(
        default=True,
        help_text=_(
            "The model understands tool calling (OpenAI tools / Anthropic tool_use). Off: it is never "
            "offered the bot's tools and answers in text only."
        ),
        verbose_name=_("supports tools"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="uniq_model_name_per_tenant")]
        verbose_name = _("AI model")
        verbose_name_plural = _("AI models")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display().split(' ')[0]} {self.model})".strip()

    def clean(self) -> None:
        """An endpoint the outbound guard refuses (docs/security.md "Outbound calls") is not saved."""
        super().clean()
        errors = {}
        refused = netguard.check_url(self.endpoint) if self.endpoint else ""
        if refused:
            errors["endpoint"] = refused
        # A provider's API needs to be told which of its models to use (an empty name would fail
        # at the first question, after "Test this model" had passed).
        if self.provider != self.Provider.BUILTIN and not (self.model or "").strip():
            errors["model"] = _("Name the model to use, e.g. glm-4-turbo.")
        if errors:
            raise ValidationError(errors)
