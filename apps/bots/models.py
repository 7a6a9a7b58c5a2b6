from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.tenants.models import slug_validator

DEFAULT_FAILURE_TEXT = (
    "Sorry, I can't answer right now. Please try again in a moment. / 抱歉，我暂时无法回答，请稍后再试。"
)


class Bot(models.Model):
    """An assistant: persona, models, and the rules of its conversations."""

    class PiiPolicy(models.TextChoices):
        MASK = "mask", _("Mask PII before it reaches a model")
        ALLOW = "allow", _("Send text to the model as written (PII is still masked in logs)")

    class KnowledgeFallback(models.TextChoices):
        UNKNOWN = "unknown", _("Say it does not know")
        GENERAL = "general", _("Answer from the model's general knowledge")

    class MergeMode(models.TextChoices):
        BURST = "burst", _("Answer at once; hold only a burst")
        WINDOW = "window", _("Hold every short message for the window")

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="bots", verbose_name=_("tenant")
    )
    slug = models.CharField(max_length=63, validators=[slug_validator], verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    system_prompt = models.TextField(blank=True, verbose_name=_("system prompt"))
    greeting = models.TextField(blank=True, verbose_name=_("greeting"))
    help_text = models.TextField(
        blank=True,
        help_text=_("Shown by /help. Empty: a friendly default in the user's language."),
        verbose_name=_("help text"),
    )
    failure_text = models.TextField(
        blank=True,
        default="",
        help_text=_("Sent when every model fails. Empty: a polite default."),
        verbose_name=_("failure text"),
    )
    model = models.ForeignKey(
        "llm.ModelConfig",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"purpose": "chat"},
        help_text=_("Primary model. Empty: the deployment's default model (AI_PROVIDER …)."),
        verbose_name=_("model"),
    )
    language_routes = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Per-language primary model names, e.g. {"zh": "glm", "en": "gpt"}.'),
        verbose_name=_("language routes"),
    )
    context_max_tokens = models.PositiveIntegerField(
        default=3000, validators=[MinValueValidator(100)], verbose_name=_("context max tokens")
    )
    context_max_turns = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(200)], verbose_name=_("context max turns")
    )
    idle_timeout_minutes = models.PositiveIntegerField(
        default=30,
        help_text=_("A conversation starts fresh after this idle time."),
        verbose_name=_("idle timeout minutes"),
    )
    merge_mode = models.CharField(
        max_length=8,
        choices=MergeMode.choices,
        default=MergeMode.BURST,
        help_text=_(
            "Burst: a lone message is answered at once; one written within the window after the sender's "
            "previous message is held for the window, so a burst is answered once. Window: every short message "
            "is held for the window."
        ),
        verbose_name=_("merge mode"),
    )
    merge_window_ms = models.PositiveIntegerField(
        default=1500,
        help_text=_("Short messages within this window are answered together. 0 turns merging off."),
        verbose_name=_("merge window ms"),
    )
    rate_limit_per_second = models.PositiveIntegerField(
        default=100, help_text=_("Messages per second for the whole bot."), verbose_name=_("rate limit per second")
    )
    user_rate_limit_per_minute = models.PositiveIntegerField(
        default=20, help_text=_("Messages per minute per end user."), verbose_name=_("user rate limit per minute")
    )
    cache_answers = models.BooleanField(
        default=False,
        help_text=_("Cache model answers to repeated context-free questions."),
        verbose_name=_("cache answers"),
    )
    cache_ttl_seconds = models.PositiveIntegerField(default=3600, verbose_name=_("cache ttl seconds"))
    pii_policy = models.CharField(
        max_length=8, choices=PiiPolicy.choices, default=PiiPolicy.MASK, verbose_name=_("pii policy")
    )
    feedback_links = models.BooleanField(
        default=True, help_text=_("Add a rating link to answers."), verbose_name=_("feedback links")
    )
    retrieval_threshold = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_(
            "Knowledge bases: a passage is used only when its relevance (0–1: the share of the question's "
            "informative words it contains, or its embedding similarity) reaches this."
        ),
        verbose_name=_("retrieval threshold"),
    )
    knowledge_fallback = models.CharField(
        max_length=8,
        choices=KnowledgeFallback.choices,
        default=KnowledgeFallback.UNKNOWN,
        help_text=_("What the bot does when its knowledge bases have nothing relevant."),
        verbose_name=_("knowledge fallback"),
    )
    retention_days = models.PositiveIntegerField(
        default=180,
        help_text=_("Conversations older than this are deleted. 0 keeps them."),
        verbose_name=_("retention days"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["tenant", "slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="uniq_bot_slug_per_tenant")]
        verbose_name = _("bot")
        verbose_name_plural = _("bots")

    def __str__(self) -> str:
        return self.name

    def fallback_configs(self) -> list:
        """The fallback models in the order they are tried."""
        return [f.model for f in self.fallbacks.select_related("model").order_by("position", "id")]


class BotFallback(models.Model):
    """One fallback model of a bot; tried in ``position`` order after the primary fails."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="fallbacks", verbose_name=_("bot"))
    model = models.ForeignKey(
        "llm.ModelConfig",
        on_delete=models.CASCADE,
        related_name="+",
        limit_choices_to={"purpose": "chat"},
        verbose_name=_("model"),
    )
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["bot", "model"], name="uniq_bot_fallback")]
        verbose_name = _("bot fallback")
        verbose_name_plural = _("bot fallbacks")

    def __str__(self) -> str:
        return f"{self.position}: {self.model}"


class KnowledgeEntry(models.Model):
    """A static answer: questions that match it are answered without a model call."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="knowledge", verbose_name=_("bot"))
    question = models.TextField(verbose_name=_("question"))
    answer = models.TextField(verbose_name=_("answer"))
    keywords = models.CharField(
        max_length=500, blank=True, help_text=_("Comma-separated extra phrases that match."), verbose_name=_("keywords")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["bot", "id"]
        verbose_name_plural = _("knowledge entries")
        verbose_name = _("knowledge entry")

    def __str__(self) -> str:
        return self.question[:80]
