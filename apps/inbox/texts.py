"""What the end user is told, in their language (Chinese or English), as the chat commands are
(``apps.conversations.commands``): these go out to IM users, not to the admin's locale."""

from __future__ import annotations

TEXTS = {
    "requested_open": {
        "en": "I've asked a colleague to take over. Someone will reply here shortly (we're available {days}, {hours}).",
        "zh": "已为你转接人工客服，同事会尽快在这里回复你（服务时间：{days} {hours}）。",
    },
    "requested_closed": {
        "en": "I've asked a colleague to take over. Our team is available {days}, {hours}; "
        "they will reply here from {next}.",
        "zh": "已为你转接人工客服。人工服务时间为{days} {hours}，同事将于{next}起在这里回复你。",
    },
    "requested_rule": {
        "en": "Sorry my answers didn't help. I've asked a colleague to take over; someone will reply here.",
        "zh": "抱歉我的回答没能帮到你，已为你转接人工客服，同事会在这里回复你。",
    },
    "already_waiting": {
        "en": "A colleague has been asked already and will reply here.",
        "zh": "已经为你转接人工客服，请稍候，同事会在这里回复你。",
    },
    "resolved": {
        "en": "Our colleague has finished helping you. I'm back: ask me anything.",
        "zh": "人工客服已结束本次服务，接下来由我继续为你解答。",
    },
    "timed_out": {
        "en": "This conversation has been quiet for a while, so I'm taking it back. "
        "Write /human if you'd like a colleague again.",
        "zh": "对话已有一段时间没有新消息，接下来由我继续为你解答。如需人工服务，请发送 /human。",
    },
    "notify_team": {
        "en": "New conversation waiting for a person ({bot}, {platform}): {summary}",
        "zh": "有新的对话等待人工处理（{bot}，{platform}）：{summary}",
    },
}

DAY_NAMES = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "zh": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
}


def lang_key(language: str) -> str:
    return "zh" if (language or "").startswith("zh") else "en"


def text_for(key: str, language: str, **fmt: str) -> str:
    template = TEXTS[key][lang_key(language)]
    return template.format(**fmt) if fmt else template


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
