"""Long-connection mode: Parley connects out to the platform instead of receiving webhooks.

For companies without a public URL. ``python manage.py run_connectors`` (``supervisor.py``) keeps one
connection per enabled long-connection channel, one holder per channel across the cluster. One
module per platform; adding one is a module and a line in ``CONNECTORS``. See docs/connectors.md.
"""

from __future__ import annotations

from importlib import import_module

from .base import Connector

CONNECTORS: dict[str, str] = {
    "slack": "apps.channels.connectors.slack.SlackConnector",
    "dingtalk": "apps.channels.connectors.dingtalk.DingTalkConnector",
    "telegram": "apps.channels.connectors.telegram.TelegramConnector",
    "feishu": "apps.channels.connectors.feishu.FeishuConnector",
}

#: Platforms whose channels cannot be set to long-connection mode, and why (shown in the admin).
UNAVAILABLE: dict[str, str] = {
    "web": "The web chat is served by Parley itself; it has no platform to connect to.",
    "wecom": "WeCom self-built apps deliver messages by HTTP callback only; use the webhook mode.",
    "qq": "QQ's WebSocket gateway is retired (QQ bots receive events by webhook only); use the webhook mode.",
}


def connector_class(platform: str) -> type[Connector] | None:
    path = CONNECTORS.get(platform)
    if path is None:
        return None
    module_name, _, class_name = path.rpartition(".")
    return getattr(import_module(module_name), class_name)


def long_connection_platforms() -> list[str]:
    return sorted(CONNECTORS)


def long_connection_problems(platform: str, credentials: dict, *, enabled: bool = True) -> dict[str, list[str]]:
    """What stops a ``platform`` channel with these credentials from running in long-connection
    mode, as messages by form field (``mode``, ``credentials``); {} when nothing does."""
    from apps.channels.platforms.registry import get_adapter

    cls = connector_class(platform)
    if cls is None:
        reason = UNAVAILABLE.get(platform, f"{platform} has no long-connection mode.")
        offered = ", ".join(long_connection_platforms())
        return {"mode": [f"{reason} Long connection is available for: {offered}."]}
    adapter = get_adapter(platform)
    known = set(adapter.credential_keys if adapter else ()) | set(cls.extra_credentials)
    errors: list[str] = []
    unknown = sorted(set(credentials) - known)
    if unknown:
        errors.append(
            f"Unknown credential key(s) for {platform}: {', '.join(unknown)}. Expected: {', '.join(sorted(known))}."
        )
    if enabled:
        missing = [k for k in cls.required_credentials if not credentials.get(k)]
        if missing:
            errors.append(f"Missing credential(s) for {platform} in long-connection mode: {', '.join(missing)}.")
    return {"credentials": errors} if errors else {}
