from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from apps.core import netguard
from apps.core.fields import EncryptedJSONField

from .platforms.registry import choices as platform_choices

key_validator = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$", "3–64 letters, digits, '-' or '_'.")


class Channel(models.Model):
    """Where a bot meets its users: one IM app (or one web-chat widget) of one platform."""

    #: The platforms of the registry (``platforms/registry.py``): ``Channel.Platform.WEB`` == "web".
    Platform = models.TextChoices("Platform", [(name.upper(), (name, label)) for name, label in platform_choices()])

    class Mode(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (platform calls Parley)"
        LONG_CONNECTION = "long_connection", "Long connection (Parley connects out)"

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="channels")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    key = models.CharField(
        max_length=64,
        unique=True,
        validators=[key_validator],
        help_text="Public key used in /webhooks/<platform>/<key>/ and /ws/chat/<key>/.",
    )
    name = models.CharField(max_length=200, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.WEBHOOK)
    credentials = EncryptedJSONField(help_text="Platform secrets; stored encrypted.")
    api_base = models.URLField(max_length=300, blank=True, help_text="Override of the platform's API base URL.")
    allowed_origins = models.TextField(blank=True, help_text="Web chat: origins allowed to embed it, one per line.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.platform})"

    def clean(self) -> None:
        """An API base the outbound guard refuses (docs/security.md "Outbound calls") is not saved."""
        super().clean()
        refused = netguard.check_url(self.api_base) if self.api_base else ""
        if refused:
            raise ValidationError({"api_base": refused})

    @property
    def tenant(self):
        return self.bot.tenant

    @property
    def webhook_url(self) -> str:
        if self.platform == self.Platform.WEB:
            return f"{settings.PUBLIC_BASE_URL}/chat/{self.key}/"
        return f"{settings.PUBLIC_BASE_URL}/webhooks/{self.platform}/{self.key}/"

    def origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.allowed_origins.splitlines() if o.strip()]
