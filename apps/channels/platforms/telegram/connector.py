"""Telegram ``getUpdates`` long polling.

Telegram has no socket; the no-public-URL alternative to the webhook is ``getUpdates`` with a
``timeout`` (the request waits until updates arrive). ``offset`` = last ``update_id`` + 1 confirms
everything before it, so an update is confirmed only after it is stored: one that could not be
stored is fetched again. Each update goes through the Telegram adapter's ``parse`` (the secret-token
header is a webhook matter and not asked for here); replies go out through ``sendMessage``.

A ``callback_query`` (a click on an answer's rating button) is recorded exactly as the webhook
records it (``answer_rating_click``: the adapter's ``rating_click``, the rating service, the
adapter's ``rating_response``), so answers on a polling channel carry the buttons too.
The webhook answers the click by returning an ``answerCallbackQuery`` call as its response body;
here there is no response to return it in, so the connector makes that call itself (best effort: a
toast that could not be shown does not fetch the click again).

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

from apps.channels.clicks import answer_rating_click
from apps.channels.connectors.base import Connector, ConnectorError, Link, post_json
from apps.channels.platforms import http
from apps.channels.platforms.base import Inbound, RawRequest
from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.telegram.adapter import ALLOWED_UPDATES
from apps.core import netguard

POLL_SECONDS = 25  # Telegram holds a getUpdates this long when no update is waiting


def handle_update(adapter: Any, channel: Any, raw: bytes, calls: list[dict[str, Any]]) -> list[Inbound]:
    """The messages of one update, as the webhook view reads them; a rating click is recorded
    instead (never a message), and the Bot API call that answers it is appended to ``calls`` for
    the connector to make. Raises ``MalformedRequest`` for an update that cannot be understood."""
    request = RawRequest.event(raw)
    click = adapter.rating_click(request, channel)
    if click is None:
        return adapter.parse(request, channel)
    response = answer_rating_click(adapter, channel, request, click)
    try:
        call = json.loads(response.content) if response.content else None
    except ValueError:
        call = None
    if isinstance(call, dict) and isinstance(call.get("method"), str):
        calls.append(call)
    return []


class TelegramConnector(Connector):
    platform = "telegram"
    required_credentials = ("bot_token",)
    console_hint = "Nothing in BotFather: Parley removes the bot's webhook when it starts polling."
    rating_clicks = True

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
        timeout = http.timeout(extra=self.poll_seconds + 5.0)
        async with netguard.guarded_async_client(timeout=timeout) as client:
            info = await self.call(client, base, "getWebhookInfo", {})
            if isinstance(info, dict) and info.get("url"):
                await self.call(client, base, "deleteWebhook", {"drop_pending_updates": False})
                link.log.warning(
                    "telegram: the bot had a webhook; removed it, since this channel receives by long polling"
                )
            link.connected()  # the token works and the API answers; a poll may now wait 25 s for news
            while True:
                body: dict[str, Any] = {"timeout": self.poll_seconds, "allowed_updates": ALLOWED_UPDATES}
                if self.offset is not None:
                    body["offset"] = self.offset
                updates = await self.call(client, base, "getUpdates", body)
                for update in updates if isinstance(updates, list) else []:
                    update_id = update.get("update_id") if isinstance(update, dict) else None
                    if not isinstance(update_id, int) or isinstance(update_id, bool):
                        continue
                    raw = json.dumps(update).encode()
                    calls: list[dict[str, Any]] = []
                    stored = await link.deliver(
                        lambda channel, raw=raw, calls=calls: handle_update(adapter, channel, raw, calls)
                    )
                    if not stored:
                        raise ConnectorError("an update could not be stored; it is fetched again")
                    self.offset = update_id + 1
                    for call in calls:
                        method = call.pop("method")
                        try:
                            await self.call(client, base, method, call)
                        except ConnectorError as exc:
                            link.log.warning("telegram %s failed: %s", method, str(exc)[:200])
