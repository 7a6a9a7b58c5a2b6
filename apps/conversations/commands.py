"""Chat commands: ``/help``, ``/reset``, ``/stop``, ``/lang`` and the hint for unknown ones.

The user-facing texts live here as plain functions; the syntax (``parse_command``) is
``apps.core.commands``, shared with workflow triggers; the pipeline step that carries a command out
(close a conversation, stop an answer, send the reply) is ``pipeline/commands.py``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from apps.core.commands import ALIASES, Command, parse_command
from apps.core.i18n import text_in

__all__ = ["ALIASES", "LANGUAGES", "TEXTS", "Command", "help_text", "interrupts_answer", "parse_command", "text_for"]

LANGUAGES = {"en": "en", "english": "en", "zh": "zh", "cn": "zh", "chinese": "zh", "中文": "zh", "英文": "en"}


def interrupts_answer(text: str) -> bool:
    """Whether a message makes the answer being made for its sender obsolete: every ordinary
    message does, and so does ``/stop``; other commands are answered beside it."""
    cmd = parse_command(text)
    return cmd is None or cmd.name == "stop"


TEXTS = {
    "help": _(
        "Hi! I'm {bot}, an AI assistant. Just write your question and I'll answer.\n\n"
        "Commands:\n"
        "- `/help` — this menu\n"
        "- `/reset` — start a new conversation (I forget what we said)\n"
        "- `/stop` — stop the answer I'm writing\n"
        "- `/lang en|zh` — choose the language I answer in"
    ),
    "reset": _("Started a new conversation. What can I help you with?"),
    "stopped": _("Stopped."),
    "nothing_to_stop": _("There is no answer in progress."),
    # Translators: said in the language just chosen with /lang, so the Chinese text names Chinese.
    "lang_set": _("I'll answer in English from now on."),
    "lang_auto": _("I'll answer in the language you write in."),
    "lang_usage": _("Usage: `/lang en`, `/lang zh` or `/lang auto`."),
    "unknown": _("I don't know the command `/{name}`. Send `/help` to see what I can do."),
    "rate_limited_user": _("You're sending messages a little too fast. Please wait a moment and try again."),
    "rate_limited_bot": _("I'm receiving a lot of messages right now. Please try again in a moment."),
}


def text_for(key: str, language: str, **fmt: str) -> str:
    """The user-facing text ``key`` in ``language`` (zh or en; anything else gets English), from
    the project catalogue (docs/i18n.md)."""
    return text_in(language, TEXTS[key], **fmt)


def help_text(bot, language: str) -> str:
    """The bot's own help menu when set in the admin, else the friendly default in ``language``."""
    if (bot.help_text or "").strip():
        return bot.help_text
    return text_for("help", language, bot=bot.name)
