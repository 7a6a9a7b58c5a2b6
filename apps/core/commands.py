"""The chat command syntax: a slash, a command word, an optional argument ("/help",
"/help@ParleyBot" in Telegram groups, "/lang zh", "/帮助"), and the built-in command names.

Shared by the pipeline's commands step (``apps.conversations.commands``, which carries commands out
and holds their texts) and workflow triggers (``apps.workflows``, which must not shadow a built-in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "/help", "/help@ParleyBot" (Telegram group form), "/lang zh"; Chinese aliases for Chinese users.
_COMMAND = re.compile(r"^\s*[/／](?P<name>[A-Za-z\u4e00-\u9fff_]{1,32})(?:@\S+)?(?:\s+(?P<arg>.*))?$", re.DOTALL)

ALIASES = {
    "help": "help",
    "start": "help",
    "帮助": "help",
    "reset": "reset",
    "new": "reset",
    "重置": "reset",
    "新对话": "reset",
    "stop": "stop",
    "停止": "stop",
    "lang": "lang",
    "language": "lang",
    "语言": "lang",
}


@dataclass(frozen=True)
class Command:
    name: str  # help | reset | stop | lang | unknown
    arg: str = ""
    raw_name: str = ""
    chinese: bool = False  # typed with a Chinese alias: answer in Chinese


def parse_command(text: str) -> Command | None:
    """The command in ``text``, or None when it is an ordinary message.

    A slash followed by something that is not a command word ("/ 2", "/usr/bin") is a message.
    """
    m = _COMMAND.match(text or "")
    if m is None:
        return None
    raw = m.group("name")
    name = ALIASES.get(raw.lower(), "unknown")
    chinese = bool(re.search(r"[\u4e00-\u9fff]", raw))
    return Command(name=name, arg=(m.group("arg") or "").strip(), raw_name=raw, chinese=chinese)
