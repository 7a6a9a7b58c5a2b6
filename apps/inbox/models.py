"""Human handoff: a person takes a live conversation over from the bot and gives it back.

``Handoff`` moves waiting → active → resolved: a user, a rule or the model asks for a person
(waiting, in the tenant's queue); one agent claims it (active: the bot stays silent, the agent
answers through the conversation's own channel); the agent resolves it, or a silence longer than
the bot's ``HandoffSettings.idle_timeout_minutes`` times it out (resolved: the bot answers again).
At most one handoff per conversation is open (waiting or active) — a partial unique constraint.
"""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

DEFAULT_PHRASES = "转人工\n人工客服\n找人工\ntalk to a human\nhuman agent\nreal person"


class HandoffSettings(models.Model):
    """How one bot hands conversations to people. A bot without a row uses the defaults."""

    bot = models.OneToOneField("bots.Bot", on_delete=models.CASCADE, related_name="handoff_settings")
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Users may ask for a person."))
    phrases = models.TextField(
        _("phrases"),
        blank=True,
        default=DEFAULT_PHRASES,
        help_text=_(
            "Messages that ask for a person, one per line, in Chinese and English (matched whole, "
            "ignoring case and punctuation). /human always works."
        ),
    )
    opens_at = models.TimeField(_("opens at"), default=time(9, 0))
    closes_at = models.TimeField(_("closes at"), default=time(18, 0))
    open_days = models.CharField(
        _("open days"),
        max_length=7,
        default="12345",
        help_text=_("Weekdays with people available: 1 = Monday … 7 = Sunday, e.g. 12345."),
    )
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    idle_timeout_minutes = models.PositiveIntegerField(
        _("hand back after (minutes)"),
        default=30,
        help_text=_("A conversation nobody writes in for this long goes back to the bot."),
    )
    notify_channel = models.ForeignKey(
        "im_channels.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("notify channel"),
        help_text=_("The team's own IM channel, told of every new waiting conversation."),
    )
    notify_chat_id = models.CharField(
        _("notify chat id"), max_length=200, blank=True, help_text=_("The team group's chat id on that channel.")
    )

    class Meta:
        verbose_name = _("handoff settings")
        verbose_name_plural = _("handoff settings")

    def __str__(self) -> str:
        return str(self.bot)

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = _("Unknown time zone (use a name such as Asia/Shanghai).")
        if not self.open_days or any(c not in "1234567" for c in self.open_days):
            errors["open_days"] = _("Use the digits 1 (Monday) to 7 (Sunday).")
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            errors["closes_at"] = _("Closing time must be after opening time.")
        if self.notify_channel_id and self.bot_id and self.notify_channel.bot.tenant_id != self.bot.tenant_id:
            errors["notify_channel"] = _("Choose a channel of the same tenant.")
        if self.notify_channel_id and not self.notify_chat_id.strip():
            errors["notify_chat_id"] = _("Give the team group's chat id.")
        if errors:
            raise ValidationError(errors)


class Handoff(models.Model):
    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        ACTIVE = "active", _("Active")
        RESOLVED = "resolved", _("Resolved")

    class Reason(models.TextChoices):
        COMMAND = "command", _("/human command")
        PHRASE = "phrase", _("Asked for a person")
        RULE = "rule", _("Two thumbs-down in a row")
        MODEL = "model", _("The model's decision")

    class EndedBy(models.TextChoices):
        AGENT = "agent", _("Agent")
        TIMEOUT = "timeout", _("Silence (timed out)")

    OPEN_STATES = (State.WAITING, State.ACTIVE)

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="handoffs")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="handoffs")
    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="handoffs")
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.WAITING)
    reason = models.CharField(_("reason"), max_length=8, choices=Reason.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="handoffs"
    )
    summary = models.TextField(_("summary"), blank=True, help_text=_("The bot's summary of the question."))
    note = models.TextField(blank=True, help_text=_("Why the model asked for a person."))
    language = models.CharField(max_length=8, blank=True)
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    first_reply_at = models.DateTimeField(_("first reply at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    ended_by = models.CharField(max_length=8, choices=EndedBy.choices, blank=True)
    last_activity_at = models.DateTimeField(auto_now_add=True, help_text="Last message either way (the idle sweep).")

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("handoff")
        verbose_name_plural = _("handoffs")
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(state__in=["waiting", "active"]),
                name="uniq_open_handoff",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "state"], name="handoff_queue_idx")]

    def __str__(self) -> str:
        return f"handoff #{self.pk} ({self.state})"


class CannedReply(models.Model):
    """A prepared answer agents insert with one click (tenant-wide, or for one bot)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="canned_replies")
    bot = models.ForeignKey("bots.Bot", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(_("title"), max_length=100)
    text = models.TextField(_("text"))

    class Meta:
        ordering = ["title"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self) -> str:
        return self.title
