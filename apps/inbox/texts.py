"""What the end user is told, in their language (Chinese or English), as the chat commands are
(``apps.conversations.commands``): these go out to IM users, not to the admin's locale."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.core.i18n import text_in

TEXTS = {
    "requested_open": _(
        "I've asked a colleague to take over. Someone will reply here shortly (we're available {days}, {hours})."
    ),
    "requested_closed": _(
        "I've asked a colleague to take over. Our team is available {days}, {hours}; they will reply here from {next}."
    ),
    "requested_rule": _("Sorry my answers didn't help. I've asked a colleague to take over; someone will reply here."),
    "already_waiting": _("A colleague has been asked already and will reply here."),
    "resolved": _("Our colleague has finished helping you. I'm back: ask me anything."),
    "timed_out": _(
        "This conversation has been quiet for a while, so I'm taking it back. "
        "Write /human if you'd like a colleague again."
    ),
    "notify_team": _("New conversation waiting for a person ({bot}, {platform}): {summary}"),
}

DAY_NAMES = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "zh": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
}


def lang_key(language: str) -> str:
    return "zh" if (language or "").startswith("zh") else "en"


def text_for(key: str, language: str, **fmt: str) -> str:
    """The text ``key`` in ``language``, from the project catalogue (docs/i18n.md)."""
    return text_in(language, TEXTS[key], **fmt)


def days_text(open_days: str, language: str) -> str:
    """ "Mon–Fri" / "周一至周五" for a run of days, else the days listed."""
    names = DAY_NAMES[lang_key(language)]
    days = sorted({int(c) for c in open_days if c in "1234567"})
    if not days:
        return ""
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        joiner = "至" if lang_key(language) == "zh" else "–"
        return f"{names[days[0] - 1]}{joiner}{names[days[-1] - 1]}"
    return ("、" if lang_key(language) == "zh" else ", ").join(names[d - 1] for d in days)
