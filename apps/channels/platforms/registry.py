"""Every platform Parley speaks, one ``Platform`` line each.

A line names the platform's folder pieces by dotted path, imported only when first used: its
adapter (webhooks, replies), and its long-connection connector when it has one (or why it has none,
shown in the admin). The ``Channel.platform`` choices, the ``apply`` schema of configuration files,
the webhook view and ``run_connectors`` all read this table, so adding a platform is its folder
and one line here (docs/platforms.md, "Adding a platform").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _

from .base import PlatformAdapter

if TYPE_CHECKING:
    from apps.channels.connectors.base import Connector


@dataclass(frozen=True)
class Platform:
    name: str  # the value stored in Channel.platform and used in /webhooks/<name>/<key>/
    label: Any  # how the admin names it (a lazy translation)
    adapter: str  # dotted path of the PlatformAdapter subclass
    connector: str = ""  # dotted path of the long-connection Connector subclass; "" for none
    #: Why a channel of this platform cannot be put in long-connection mode (when ``connector`` is "").
    no_connector: str = ""


_BASE = "apps.channels.platforms"

PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform(
            "web",
            _("Web chat"),
            f"{_BASE}.web.adapter.WebAdapter",
            no_connector="The web chat is served by Parley itself; it has no platform to connect to.",
        ),
        Platform(
            "feishu",
            _("Feishu / Lark"),
            f"{_BASE}.feishu.adapter.FeishuAdapter",
            f"{_BASE}.feishu.connector.FeishuConnector",
        ),
        Platform(
            "wecom",
            _("WeCom (企业微信)"),
            f"{_BASE}.wecom.adapter.WeComAdapter",
            no_connector="WeCom self-built apps deliver messages by HTTP callback only; use the webhook mode.",
        ),
        Platform(
            "dingtalk",
            _("DingTalk"),
            f"{_BASE}.dingtalk.adapter.DingTalkAdapter",
            f"{_BASE}.dingtalk.connector.DingTalkConnector",
        ),
        Platform(
            "qq",
            "QQ",
            f"{_BASE}.qq.adapter.QQAdapter",
            no_connector=(
                "QQ's WebSocket gateway is retired (QQ bots receive events by webhook only); use the webhook mode."
            ),
        ),
        Platform("slack", "Slack", f"{_BASE}.slack.adapter.SlackAdapter", f"{_BASE}.slack.connector.SlackConnector"),
        Platform(
            "telegram",
            "Telegram",
            f"{_BASE}.telegram.adapter.TelegramAdapter",
            f"{_BASE}.telegram.connector.TelegramConnector",
        ),
    )
}


def _load(path: str) -> Any:
    module_name, _, name = path.rpartition(".")
    return getattr(import_module(module_name), name)


def platforms() -> list[str]:
    return sorted(PLATFORMS)


def choices() -> list[tuple[str, str]]:
    """``(name, label)`` of every platform, in the table's order (the ``Channel.platform`` choices)."""
    return [(p.name, p.label) for p in PLATFORMS.values()]


@cache
def get_adapter(platform: str) -> PlatformAdapter | None:
    entry = PLATFORMS.get(platform)
    return _load(entry.adapter)() if entry is not None else None


def connector_class(platform: str) -> type[Connector] | None:
    """The platform's long-connection client class, or None when it has none."""
    entry = PLATFORMS.get(platform)
    if entry is None or not entry.connector:
        return None
    return _load(entry.connector)


def long_connection_platforms() -> list[str]:
    return sorted(name for name, entry in PLATFORMS.items() if entry.connector)


def no_connector_reason(platform: str) -> str:
    entry = PLATFORMS.get(platform)
    return (entry.no_connector if entry is not None else "") or f"{platform} has no long-connection mode."
