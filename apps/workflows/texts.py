"""What a workflow tells the end user, in Chinese or English (the user's language)."""

from __future__ import annotations

TEXTS = {
    "confirm": {
        "en": "I'm about to run **{name}**{detail}.\nReply **yes** to confirm or **no** to cancel "
        "(valid for {minutes} min).",
        "zh": "即将执行「{name}」{detail}。\n回复 **确认** 继续，回复 **取消** 放弃（{minutes} 分钟内有效）。",
    },
    "detail": {"en": ' with "{text}"', "zh": "：“{text}”"},
    "cancelled": {"en": "Cancelled — **{name}** was not run.", "zh": "已取消，「{name}」未执行。"},
    "superseded": {
        "en": "(The pending **{name}** was cancelled.)",
        "zh": "（待确认的「{name}」已取消。）",
    },
    "expired": {
        "en": "That confirmation has expired, so **{name}** was not run. Send the request again if you still need it.",
        "zh": "确认已过期，「{name}」未执行。如仍需要，请重新发送。",
    },
    "done": {"en": "Done: **{name}**.", "zh": "已完成：「{name}」。"},
    "failed": {
        "en": "Sorry, **{name}** could not be completed right now. Please try again later.",
        "zh": "抱歉，「{name}」暂时无法完成，请稍后再试。",
    },
    # The call was lost after it had started: the business system may or may not have done it.
    "unknown": {
        "en": "Sorry, I could not find out whether **{name}** went through. Please check before you try again.",
        "zh": "抱歉，无法确认「{name}」是否已完成，请先核实再重试。",
    },
}

CONFIRM_WORDS = frozenset({"yes", "y", "confirm", "ok", "okay", "确认", "是", "是的", "确定", "好", "好的"})
CANCEL_WORDS = frozenset({"no", "n", "cancel", "取消", "否", "不", "不要", "算了"})
_TRAILING = " \t\r\n.!。！~～"


def text_for(key: str, language: str, **fmt: object) -> str:
    variants = TEXTS[key]
    template = variants["zh" if (language or "").startswith("zh") else "en"]
    return template.format(**fmt) if fmt else template


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
