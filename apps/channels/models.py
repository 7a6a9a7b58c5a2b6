from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core import netguard
from apps.core.fields import EncryptedJSONField, EndpointField
from apps.core.i18n import escaped_help

from .platforms.registry import choices as platform_choices

key_validator = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$", _("3–64 letters, digits, '-' or '_'."))


class Channel(models.Model):
    """Where a bot meets its users: one IM app (or one web-chat widget) of one platform."""

    #: The platforms of the registry (``platforms/registry.py``): ``Channel.Platform.WEB`` == "web".
    Platform = models.TextChoices("Platform", [(name.upper(), (name, label)) for name, label in platform_choices()])

    class Mode(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook (platform calls Parley)")
        LONG_CONNECTION = "long_connection", _("Long connection (Parley connects out)")

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="channels", verbose_name=_("bot"))
    platform = models.CharField(max_length=16, choices=Platform.choices, verbose_name=_("platform"))
    key = models.CharField(
        max_length=64,
        unique=True,
        validators=[key_validator],
        help_text=escaped_help(_("Public key used in /webhooks/<platform>/<key>/ and /ws/chat/<key>/.")),
        verbose_name=_("key"),
    )
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.WEBHOOK, verbose_name=_("mode"))
    credentials = EncryptedJSONField(help_text=_("Platform secrets; stored encrypted."), verbose_name=_("credentials"))
    api_base = EndpointField(
        max_length=300, blank=True, help_text=_("Override of the platform's API base URL."), verbose_name=_("api base")
    )
    allowed_origins = models.TextField(
        blank=True,
        help_text=_("Web chat: origins allowed to embed it, one per line."),
        verbose_name=_("allowed origins"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    streaming = models.BooleanField(
        default=True,
        help_text=_(
            "Show answers as they are written, on platforms where a sent message can be updated. "
            "Off: each answer arrives as one finished message."
        ),
        verbose_name=_("stream answers"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["key"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

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
