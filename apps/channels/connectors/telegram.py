"""Telegram ``getUpdates`` long polling.

Telegram has no socket; the no-public-URL alternative to the webhook is ``getUpdates`` with a
``timeout`` (the request waits until updates arrive). ``offset`` = last ``update_id`` + 1 confirms
everything before it, so an update is confirmed only after it is stored: one that could not be
stored is fetched again. Each update goes through the Telegram adapter's ``parse`` (the secret-token
header is a webhook matter and not asked for here); replies go out through ``sendMessage``.

``getUpdates`` does not work while the bot has a webhook (Telegram answers 409). Choosing long
connection for a channel is choosing polling, so a webhook found on connecting is removed
(``deleteWebhook``, pending updates kept) and a warning is logged.

Plain httpx to the channel's API base, as the adapter does; the token is part of every URL, so no
URL is ever logged.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from apps.channels.platforms.registry import get_adapter

from .base import Connector, ConnectorError, Link, post_json, request_for

POLL_SECONDS = 25  # Telegram holds a getUpdates this long when no update is waiting


class TelegramConnector(Connector):
    platform = "telegram"
    required_credentials = ("bot_token",)
    console_hint = "Nothing in BotFather: Parley removes the bot's webhook when it starts polling."

    def __init__(self, poll_seconds: int = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self.offset: int | None = None  # kept across reconnects: fewer updates fetched twice

    async def call(self, client: httpx.AsyncClient, base: str, method: str, body: dict[str, Any]) -> Any:
        """A Bot API call's ``result``. Raises ``ConnectorError`` naming the method, never the URL."""
        status, data = await post_json(client, f"{base}/{method}", body, what=f"Telegram {method}")
        if status == 200 and data.get("ok"):
            return data.get("result")
        description = str(data.get("description") or f"HTTP {status}")[:200]
        if status in (401, 404):
            raise ConnectorError(f"Telegram {method}: the bot token was refused ({description})", permanent=True)
        raise ConnectorError(f"Telegram {method}: {description}")

    async def run(self, link: Link) -> None:
        channel = link.channel
        token = str((channel.credentials or {}).get("bot_token") or "")
        if not token:
            raise ConnectorError("channel has no bot_token", permanent=True)
        adapter = get_adapter("telegram")
        base = f"{adapter.api_base(channel)}/bot{token}"
        timeout = httpx.Timeout(self.poll_seconds + 15.0, connect=5.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            info = await self.call(client, base, "getWebhookInfo", {})
            if isinstance(info, dict) and info.get("url"):
                await self.call(client, base, "deleteWebhook", {"drop_pending_updates": False})
                link.log.warning(
                    "telegram: the bot had a webhook; removed it, since this channel receives by long polling"
                )
            link.connected()  # the token works and the API answers; a poll may now wait 25 s for news
            while True:
                body: dict[str, Any] = {"timeout": self.poll_seconds, "allowed_updates": ["message"]}
                if self.offset is not None:
                    body["offset"] = self.offset
                updates = await self.call(client, base, "getUpdates", body)
                for update in updates if isinstance(updates, list) else []:
                    update_id = update.get("update_id") if isinstance(update, dict) else None
                    if not isinstance(update_id, int) or isinstance(update_id, bool):
                        continue
                    raw = json.dumps(update).encode()
                    stored = await link.deliver(lambda channel, raw=raw: adapter.parse(request_for(raw), channel))
                    if not stored:
                        raise ConnectorError("an update could not be stored; it is fetched again")
                    self.offset = update_id + 1
