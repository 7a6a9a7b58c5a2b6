"""What a workflow tells the end user, in Chinese or English (the user's language)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.core.i18n import text_in

TEXTS = {
    "confirm": _(
        "I'm about to run **{name}**{detail}.\nReply **yes** to confirm or **no** to cancel (valid for {minutes} min)."
    ),
    "detail": _(' with "{text}"'),
    "cancelled": _("Cancelled — **{name}** was not run."),
    "superseded": _("(The pending **{name}** was cancelled.)"),
    "expired": _(
        "That confirmation has expired, so **{name}** was not run. Send the request again if you still need it."
    ),
    "done": _("Done: **{name}**."),
    "failed": _("Sorry, **{name}** could not be completed right now. Please try again later."),
    # The call was lost after it had started: the business system may or may not have done it.
    "unknown": _("Sorry, I could not find out whether **{name}** went through. Please check before you try again."),
}

CONFIRM_WORDS = frozenset({"yes", "y", "confirm", "ok", "okay", "确认", "是", "是的", "确定", "好", "好的"})
CANCEL_WORDS = frozenset({"no", "n", "cancel", "取消", "否", "不", "不要", "算了"})
_TRAILING = " \t\r\n.!。！~～"


def text_for(key: str, language: str, **fmt: object) -> str:
    """The text ``key`` in ``language``, from the project catalogue (docs/i18n.md)."""
    return text_in(language, TEXTS[key], **fmt)


def decision(text: str) -> str | None:
    """ "confirm", "cancel" or None for a reply to a confirmation prompt."""
    word = (text or "").strip().strip(_TRAILING).lower()
    if word in CONFIRM_WORDS:
        return "confirm"
    if word in CANCEL_WORDS:
        return "cancel"
    return None


def confirm_prompt(name: str, text: str, language: str, minutes: int) -> str:
    shown = " ".join((text or "").split())
    if len(shown) > 200:
        shown = shown[:199] + "…"
    detail = text_for("detail", language, text=shown) if shown else ""
    return text_for("confirm", language, name=name, detail=detail, minutes=minutes)
