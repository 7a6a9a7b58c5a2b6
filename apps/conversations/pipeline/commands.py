"""The command step: carry out ``/help``, ``/reset``, ``/stop``, ``/lang`` and answer unknown ones."""

from __future__ import annotations

from ..commands import LANGUAGES, Command, help_text, text_for
from ..models import Conversation, InboundMessage
from .storage import Storage
from .turns import sender_rows

S = InboundMessage.Status


def command_language(cmd: Command, conv: Conversation) -> str:
    if cmd.chinese:
        return "zh"
    return conv.language or "en"


def workflow_menu(bot, language: str) -> str:
    """Menu lines for the bot's workflow commands (``/ticket`` — its name), or ""."""
    from apps.workflows.selectors import active_workflows

    seen: dict[str, str] = {}
    for flow in sorted(active_workflows(bot), key=lambda f: (not f.bot_specific, f.key)):
        if flow.trigger == "command" and flow.key not in seen:
            seen[flow.key] = flow.name  # a bot's own workflow wins over a tenant-wide one
    return "".join(f"\n- `/{key}` — {name}" for key, name in sorted(seen.items()))


def run_command(storage: Storage, cmd: Command, inbound: InboundMessage, conv: Conversation) -> str:
    """Carry out ``cmd`` for the sender of ``inbound`` and return the text to answer with."""
    language = command_language(cmd, conv)
    bot = conv.bot
    if cmd.name == "help":
        text = help_text(bot, language)
        if (bot.help_text or "").strip():
            return text  # the admin's own menu, as written
        return text + workflow_menu(bot, language)
    if cmd.name == "reset":
        storage.close_conversation(conv)
        return text_for("reset", language)
    if cmd.name == "stop":
        # The answers being made stop by themselves: this /stop is a newer interrupting message of
        # their sender, which they check for while streaming and before they send.
        # It may already have stopped when this runs, so "in progress when /stop arrived" counts.
        earlier = sender_rows(inbound).filter(pk__lt=inbound.pk, interrupts=True, refused_by="")
        in_progress = (
            earlier.filter(status__in=[S.RECEIVED, S.PROCESSING]).exists()
            or earlier.filter(status=S.INTERRUPTED, finished_at__gte=inbound.received_at).exists()
        )
        return text_for("stopped" if in_progress else "nothing_to_stop", language)
    if cmd.name == "lang":
        wanted = cmd.arg.strip().lower()
        if wanted in ("auto", "自动"):
            storage.set_language(conv, pinned=False)
            return text_for("lang_auto", language)
        code = LANGUAGES.get(wanted)
        if code is None:
            return text_for("lang_usage", language)
        storage.set_language(conv, language=code, pinned=True)
        return text_for("lang_set", code)
    return text_for("unknown", language, name=cmd.raw_name)
