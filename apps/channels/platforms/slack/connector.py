"""Slack Socket Mode.

``apps.connections.open`` with the app-level token (``xapp-…``, scope ``connections:write``) returns
a one-off WebSocket URL. Slack sends ``hello``, then envelopes ``{envelope_id, type, payload}``; an
``events_api`` payload is the very body the Events API would POST, so the Slack adapter's ``parse``
reads it (de-duplicated on ``event_id``; Slack's retries carry the same one). Each envelope is
acknowledged with ``{"envelope_id"}`` once stored. ``disconnect`` (``refresh_requested``, a server
move) asks for a new connection. Replies go out with the bot token through ``chat.postMessage``, as
for the webhook. An ``interactive`` payload is the JSON an interactivity request carries in its
``payload`` form field: a click on an answer's rating button is recorded exactly as the webhook
records it (the adapter's ``rating_click`` and ``rating_response``). A ``slash_commands`` payload
holds the fields a slash command POSTs, so it goes to ``parse`` as that form body; other
interactions are acknowledged and logged.

The HTTP call uses slack_sdk's ``WebClient`` (pointed at the channel's ``api_base``). The socket is
a plain ``websockets`` client: slack_sdk's built-in ``SocketModeClient`` reconnects on its own
threads without backoff and without telling its caller, and its asyncio variants need aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import websockets
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from apps.channels.clicks import answer_rating_click
from apps.channels.connectors.base import Connector, ConnectorError, Link, wire_logger
from apps.channels.platforms import http
from apps.channels.platforms.base import Inbound, RawRequest
from apps.channels.platforms.registry import get_adapter
from apps.core import netguard

#: apps.connections.open errors that no retry can fix: the operator must change the token or app.
PERMANENT_ERRORS = {"invalid_auth", "not_authed", "not_allowed_token_type", "account_inactive", "token_revoked"}
FORM = "application/x-www-form-urlencoded"

logger = logging.getLogger(__name__)


def interaction(adapter: Any, channel: Any, body: bytes) -> list[Inbound]:
    """Handle an interactivity payload (as its webhook form body) the way the webhook view does: a
    rating click is stored as the answer's rating and the rated message updated (off this thread).
    Returns [] (an interaction is never a message); raises ``MalformedRequest`` for a broken click."""
    request = RawRequest.event(body, content_type=FORM)
    click = adapter.rating_click(request, channel)
    if click is None:
        logger.warning("slack interaction over Socket Mode not handled; acknowledged")
        return []
    answer_rating_click(adapter, channel, request, click)  # the message is updated off this thread
    return []


class SlackConnector(Connector):
    platform = "slack"
    extra_credentials = ("app_token",)
    required_credentials = ("app_token", "bot_token")
    console_hint = (
        "Settings → Socket Mode: enable it; Basic Information → App-Level Tokens: create one with "
        "connections:write and put it in app_token."
    )
    rating_clicks = True

    def open_url(self, channel: Any) -> str:
        """A fresh ``wss://`` URL from ``apps.connections.open``. Raises ``ConnectorError``."""
        token = str((channel.credentials or {}).get("app_token") or "")
        if not token:
            raise ConnectorError("channel has no app_token", permanent=True)
        adapter = get_adapter("slack")
        # slack_sdk connects with urllib, outside the guarded clients: the channel's own API base is
        # checked (its host resolved) first (docs/security.md "Outbound calls").
        refused = netguard.check_url(channel.api_base, resolve_host=True) if channel.api_base else ""
        if refused:
            raise ConnectorError(f"apps.connections.open: {refused}", permanent=True)
        # The SDK logs response bodies at DEBUG, and this one carries the socket's ticket.
        client = WebClient(
            token=token,
            base_url=adapter.api_base(channel) + "/api/",
            timeout=http.timeout_seconds(),
            logger=wire_logger,
        )
        try:
            response = client.apps_connections_open(app_token=token)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {exc.response.status_code}")[:100]
            raise ConnectorError(f"apps.connections.open: {error}", permanent=error in PERMANENT_ERRORS) from None
        except Exception as exc:  # network errors: the message may name the URL, so only the type
            raise ConnectorError(f"apps.connections.open: {type(exc).__name__}") from None
        url = response.get("url") if isinstance(response.data, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("wss", "ws"):
            raise ConnectorError("apps.connections.open answered without a WebSocket URL")
        return url

    async def run(self, link: Link) -> None:
        url = await asyncio.to_thread(self.open_url, link.channel)
        adapter = get_adapter("slack")
        async with websockets.connect(
            url,
            logger=wire_logger,
            open_timeout=http.timeout_seconds(),
            ping_interval=20,
            ping_timeout=20,
            close_timeout=3,
            max_size=2**22,
        ) as socket:
            async for raw in socket:
                try:
                    message = json.loads(raw)
                except (ValueError, TypeError):
                    link.log.warning("slack socket: a frame that is not JSON was ignored")
                    continue
                if not isinstance(message, dict):
                    continue
                kind = str(message.get("type") or "")
                envelope_id = message.get("envelope_id")
                if kind == "hello":
                    link.connected()
                elif kind == "disconnect":
                    reason = str(message.get("reason") or "")[:60]
                    link.log.info("slack asked for a new connection (%s)", reason, extra={"reason": reason})
                    return
                elif kind == "events_api" and isinstance(envelope_id, str):
                    link.connected()
                    body = json.dumps(message.get("payload") or {}).encode()
                    stored = await link.deliver(
                        lambda channel, body=body: adapter.parse(RawRequest.event(body), channel)
                    )
                    if stored:
                        await socket.send(json.dumps({"envelope_id": envelope_id}))
                elif kind == "slash_commands" and isinstance(envelope_id, str):
                    # The same fields a slash command POSTs to the Request URL, as its form body.
                    fields = message.get("payload") if isinstance(message.get("payload"), dict) else {}
                    body = urlencode({k: str(v) for k, v in fields.items() if isinstance(v, str | int)}).encode()
                    stored = await link.deliver(
                        lambda channel, body=body: adapter.parse(RawRequest.event(body, content_type=FORM), channel)
                    )
                    if stored:
                        await socket.send(json.dumps({"envelope_id": envelope_id}))
                elif kind == "interactive" and isinstance(envelope_id, str):
                    body = urlencode({"payload": json.dumps(message.get("payload") or {})}).encode()
                    handled = await link.deliver(lambda channel, body=body: interaction(adapter, channel, body))
                    if handled:
                        await socket.send(json.dumps({"envelope_id": envelope_id}))
                elif isinstance(envelope_id, str):
                    await socket.send(json.dumps({"envelope_id": envelope_id}))
                    link.log.warning("unsupported slack envelope", extra={"event_type": kind[:100]})
            raise ConnectorError("slack closed the connection")
