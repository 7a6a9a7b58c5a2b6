"""Chat commands: ``/help``, ``/reset``, ``/stop``, ``/lang`` and the hint for unknown ones.

The user-facing texts live here as plain functions; the syntax (``parse_command``) is
``apps.core.commands``, shared with workflow triggers; the pipeline step that carries a command out
(close a conversation, stop an answer, send the reply) is ``pipeline/commands.py``.
"""

from __future__ import annotations

from apps.core.commands import ALIASES, Command, parse_command

__all__ = ["ALIASES", "LANGUAGES", "TEXTS", "Command", "help_text", "interrupts_answer", "parse_command", "text_for"]

LANGUAGES = {"en": "en", "english": "en", "zh": "zh", "cn": "zh", "chinese": "zh", "中文": "zh", "英文": "en"}


def interrupts_answer(text: str) -> bool:
    """Whether a message makes the answer being made for its sender obsolete: every ordinary
    message does, and so does ``/stop``; other commands are answered beside it."""
    cmd = parse_command(text)
    return cmd is None or cmd.name == "stop"


TEXTS = {
    "help": {
        "en": "Hi! I'm {bot}, an AI assistant. Just write your question and I'll answer.\n\n"
        "Commands:\n"
        "- `/help` — this menu\n"
        "- `/reset` — start a new conversation (I forget what we said)\n"
        "- `/stop` — stop the answer I'm writing\n"
        "- `/lang en|zh` — choose the language I answer in",
        "zh": "你好！我是 {bot}，一个 AI 助手。直接输入你的问题，我会尽力回答。\n\n"
        "命令：\n"
        "- `/help` — 显示本菜单\n"
        "- `/reset` — 开始新对话（忘记之前的内容）\n"
        "- `/stop` — 停止正在生成的回答\n"
        "- `/lang en|zh` — 选择回答语言",
    },
    "reset": {
        "en": "Started a new conversation. What can I help you with?",
        "zh": "已开始新对话。有什么可以帮你？",
    },
    "stopped": {"en": "Stopped.", "zh": "已停止。"},
    "nothing_to_stop": {"en": "There is no answer in progress.", "zh": "当前没有正在生成的回答。"},
    "lang_set": {"en": "I'll answer in English from now on.", "zh": "好的，之后我会用中文回答。"},
    "lang_auto": {
        "en": "I'll answer in the language you write in.",
        "zh": "好的，我会用你使用的语言回答。",
    },
    "lang_usage": {
        "en": "Usage: `/lang en`, `/lang zh` or `/lang auto`.",
        "zh": "用法：`/lang en`、`/lang zh` 或 `/lang auto`。",
    },
    "unknown": {
        "en": "I don't know the command `/{name}`. Send `/help` to see what I can do.",
        "zh": "我不认识命令 `/{name}`。发送 `/help` 查看可用命令。",
    },
    "rate_limited_user": {
        "en": "You're sending messages a little too fast. Please wait a moment and try again.",
        "zh": "你发送消息太快了，请稍等片刻再试。",
    },
    "rate_limited_bot": {
        "en": "I'm receiving a lot of messages right now. Please try again in a moment.",
        "zh": "当前消息较多，请稍后再试。",
    },
}


def text_for(key: str, language: str, **fmt: str) -> str:
    """The user-facing text ``key`` in ``language`` (zh or en; anything else gets English)."""
    variants = TEXTS[key]
    template = variants["zh" if (language or "").startswith("zh") else "en"]
    return template.format(**fmt) if fmt else template


def help_text(bot, language: str) -> str:
    """The bot's own help menu when set in the admin, else the friendly default in ``language``."""
    if (bot.help_text or "").strip():
        return bot.help_text
    return text_for("help", language, bot=bot.name)
