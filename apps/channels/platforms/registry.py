"""Platform name → adapter class, imported lazily. Adding a platform is one line here."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from .base import PlatformAdapter

ADAPTERS: dict[str, str] = {
    "web": "apps.channels.platforms.web.adapter.WebAdapter",
    "feishu": "apps.channels.platforms.feishu.adapter.FeishuAdapter",
    "wecom": "apps.channels.platforms.wecom.adapter.WeComAdapter",
    "dingtalk": "apps.channels.platforms.dingtalk.adapter.DingTalkAdapter",
    "qq": "apps.channels.platforms.qq.adapter.QQAdapter",
    "slack": "apps.channels.platforms.slack.adapter.SlackAdapter",
    "telegram": "apps.channels.platforms.telegram.adapter.TelegramAdapter",
}


def platforms() -> list[str]:
    return sorted(ADAPTERS)


@cache
def get_adapter(platform: str) -> PlatformAdapter | None:
    path = ADAPTERS.get(platform)
    if path is None:
        return None
    module_name, _, class_name = path.rpartition(".")
    return getattr(import_module(module_name), class_name)()
