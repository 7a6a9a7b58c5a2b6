from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.language import DEFAULT_LANGUAGES, SUPPORTED, parse_languages

slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}$", _("Use lowercase letters, digits and dashes (max 63)."))


def validate_languages(value: str) -> None:
    unknown = [c.strip() for c in value.split(",") if c.strip() and c.strip().lower() not in SUPPORTED]
    if unknown or not value.strip():
        raise ValidationError(
            _("Use language codes Parley knows, separated by commas: %(known)s. Not known: %(unknown)s."),
            params={"known": ", ".join(SUPPORTED), "unknown": ", ".join(unknown) or "—"},
        )


def validate_timezone(value: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not value:
        return
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)s is not a time zone: use a name such as Asia/Shanghai or Europe/Berlin."),
            params={"value": value},
        ) from None


class Tenant(models.Model):
    """A company using Parley. Every tenant-owned row reaches its tenant through a foreign key."""

    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator], verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    languages = models.CharField(
        _("languages"),
        max_length=200,
        default=",".join(DEFAULT_LANGUAGES),
        validators=[validate_languages],
        help_text=_(
            "The languages your users write in, as ISO 639-1 codes separated by commas (e.g. zh, en, ja). "
            "Parley detects each message's language among these and answers in it."
        ),
    )
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        default="",
        validators=[validate_timezone],
        help_text=_("Where the tenant works, e.g. Asia/Shanghai (the bots' date and time tool). Empty: the server's."),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["slug"]
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")

    def __str__(self) -> str:
        return self.name

    @property
    def language_codes(self) -> tuple[str, ...]:
        """The enabled languages, as detection takes them."""
        return parse_languages(self.languages)


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        REVIEWER = "reviewer", _("Reviewer (read-only)")
        #: Takes over live conversations in the inbox (human handoff); sees nothing else.
        AGENT = "agent", _("Agent (human handoff)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("tenant"))
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADMIN, verbose_name=_("role"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="uniq_membership")]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"
