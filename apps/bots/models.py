from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.tenants.models import slug_validator

DEFAULT_FAILURE_TEXT = (
    "Sorry, I can't answer right now. Please try again in a moment. / 抱歉，我暂时无法回答，请稍后再试。"
)


class Bot(models.Model):
    """An assistant: persona, models, and the rules of its conversations."""

    class PiiPolicy(models.TextChoices):
        MASK = "mask", "Mask PII before it reaches a model"
        ALLOW = "allow", "Send text to the model as written (PII is still masked in logs)"

    class KnowledgeFallback(models.TextChoices):
        UNKNOWN = "unknown", "Say it does not know"
        GENERAL = "general", "Answer from the model's general knowledge"

    class MergeMode(models.TextChoices):
        BURST = "burst", "Answer at once; hold only a burst"
        WINDOW = "window", "Hold every short message for the window"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="bots")
    slug = models.CharField(max_length=63, validators=[slug_validator])
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    system_prompt = models.TextField(blank=True)
    greeting = models.TextField(blank=True)
    help_text = models.TextField(
        blank=True, help_text="Shown by /help. Empty: a friendly default in the user's language."
    )
    failure_text = models.TextField(
        blank=True, default="", help_text="Sent when every model fails. Empty: a polite default."
    )
    model = models.ForeignKey(
        "llm.ModelConfig",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"purpose": "chat"},
        help_text="Primary model. Empty: the deployment's default model (AI_PROVIDER …).",
    )
    language_routes = models.JSONField(
        default=dict, blank=True, help_text='Per-language primary model names, e.g. {"zh": "glm", "en": "gpt"}.'
    )
    context_max_tokens = models.PositiveIntegerField(default=3000, validators=[MinValueValidator(100)])
    context_max_turns = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(200)]
    )
    idle_timeout_minutes = models.PositiveIntegerField(
        default=30, help_text="A conversation starts fresh after this idle time."
    )
    merge_mode = models.CharField(
        max_length=8,
        choices=MergeMode.choices,
        default=MergeMode.BURST,
        help_text="Burst: a lone message is answered at once; one written within the window after the sender's "
        "previous message is held for the window, so a burst is answered once. Window: every short message "
        "is held for the window.",
    )
    merge_window_ms = models.PositiveIntegerField(
        default=1500, help_text="Short messages within this window are answered together. 0 turns merging off."
    )
    rate_limit_per_second = models.PositiveIntegerField(default=100, help_text="Messages per second for the whole bot.")
    user_rate_limit_per_minute = models.PositiveIntegerField(default=20, help_text="Messages per minute per end user.")
    cache_answers = models.BooleanField(
        default=False, help_text="Cache model answers to repeated context-free questions."
    )
    cache_ttl_seconds = models.PositiveIntegerField(default=3600)
    pii_policy = models.CharField(max_length=8, choices=PiiPolicy.choices, default=PiiPolicy.MASK)
    feedback_links = models.BooleanField(default=True, help_text="Add a rating link to answers.")
    retrieval_threshold = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Knowledge bases: a passage is used only when its relevance (0–1: the share of the question's "
        "informative words it contains, or its embedding similarity) reaches this.",
    )
    knowledge_fallback = models.CharField(
        max_length=8,
        choices=KnowledgeFallback.choices,
        default=KnowledgeFallback.UNKNOWN,
        help_text="What the bot does when its knowledge bases have nothing relevant.",
    )
    retention_days = models.PositiveIntegerField(
        default=180, help_text="Conversations older than this are deleted. 0 keeps them."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="uniq_bot_slug_per_tenant")]

    def __str__(self) -> str:
        return self.name

    def fallback_configs(self) -> list:
        """The fallback models in the order they are tried."""
        return [f.model for f in self.fallbacks.select_related("model").order_by("position", "id")]


class BotFallback(models.Model):
    """One fallback model of a bot; tried in ``position`` order after the primary fails."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="fallbacks")
    model = models.ForeignKey(
        "llm.ModelConfig", on_delete=models.CASCADE, related_name="+", limit_choices_to={"purpose": "chat"}
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["bot", "model"], name="uniq_bot_fallback")]

    def __str__(self) -> str:
        return f"{self.position}: {self.model}"


class KnowledgeEntry(models.Model):
    """A static answer: questions that match it are answered without a model call."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="knowledge")
    question = models.TextField()
    answer = models.TextField()
    keywords = models.CharField(max_length=500, blank=True, help_text="Comma-separated extra phrases that match.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bot", "id"]
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return self.question[:80]
