"""DingTalk Stream mode.

``POST /v1.0/gateway/connections/open`` with the app's ``clientId`` / ``clientSecret`` and the
robot-message subscription returns an ``endpoint`` and a one-off ``ticket``; the socket is
``<endpoint>?ticket=<ticket>``. Frames are ``{specVersion, type: SYSTEM|EVENT|CALLBACK, headers:
{messageId, topic, …}, data: "<JSON text>"}``; each is acknowledged with ``{code: 200, headers:
{messageId, contentType}, message: "OK", data}`` (data echoed, as the dingtalk-stream SDK does).
SYSTEM ``ping`` is answered the same way; SYSTEM ``disconnect`` asks for a new connection. A robot
message (CALLBACK on ``/v1.0/im/bot/messages/get``) carries the same JSON as an HTTP-mode callback,
so the DingTalk adapter's ``callback_inbounds`` reads it (de-duplicated on ``msgId``); its
``sessionWebhook`` is where the reply goes, as for the webhook.

A small client on ``websockets`` + httpx rather than dingtalk-stream: the SDK's gateway URL is a
class constant (one per process, not per channel), its loop never stops or backs off, it calls out
with blocking ``requests`` from the event loop and logs the endpoint together with the ticket.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import websockets

from apps.channels.connectors.base import Connector, ConnectorError, Link, post_json, wire_logger
from apps.channels.platforms import http
from apps.channels.platforms.registry import get_adapter
from apps.core import netguard

OPEN_PATH = "/v1.0/gateway/connections/open"
BOT_TOPIC = "/v1.0/im/bot/messages/get"
DISCONNECT_TOPICS = {"disconnect", "TAG_DISCONNECT"}  # the SDK has known both spellings


def ack_frame(frame: dict[str, Any], *, code: int = 200, message: str = "OK") -> str:
    headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
    data = frame.get("data") if isinstance(frame.get("data"), str) else "{}"
    return json.dumps(
        {
            "code": code,
            "headers": {"messageId": str(headers.get("messageId") or ""), "contentType": "application/json"},
            "message": message,
            "data": data,
        }
    )


class DingTalkConnector(Connector):
    platform = "dingtalk"
    required_credentials = ("client_id", "client_secret")
    console_hint = "Robot configuration → message receiving mode: choose Stream mode."

    async def open(self, channel: Any) -> str:
        """The socket URL (endpoint + ticket) from the gateway. Raises ``ConnectorError``."""
        creds = channel.credentials or {}
        client_id, secret = str(creds.get("client_id") or ""), str(creds.get("client_secret") or "")
        if not client_id or not secret:
            raise ConnectorError("channel has no client_id / client_secret", permanent=True)
        body = {
            "clientId": client_id,
            "clientSecret": secret,
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_TOPIC}],
            "ua": "parley",
        }
        url = get_adapter("dingtalk").api_base(channel) + OPEN_PATH
        async with netguard.guarded_async_client(timeout=http.timeout()) as client:
            status, data = await post_json(client, url, body, what="connections/open")
        if status != 200:
            code = str(data.get("code") or "")[:80]
            raise ConnectorError(f"connections/open: HTTP {status} {code}".strip(), permanent=status in (400, 401, 403))
        endpoint, ticket = data.get("endpoint"), data.get("ticket")
        if not isinstance(endpoint, str) or not isinstance(ticket, str) or not ticket:
            raise ConnectorError("connections/open answered without endpoint and ticket")
        if urlsplit(endpoint).scheme not in ("wss", "ws"):
            raise ConnectorError("connections/open answered with an endpoint that is not a WebSocket URL")
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode({"ticket": ticket})

    async def run(self, link: Link) -> None:
        url = await self.open(link.channel)
        adapter = get_adapter("dingtalk")
        async with websockets.connect(
            url, logger=wire_logger, open_timeout=10, ping_interval=20, ping_timeout=20, close_timeout=3, max_size=2**22
        ) as socket:
            link.connected()  # DingTalk sends no greeting: an open socket is a registered one
            async for raw in socket:
                try:
                    frame = json.loads(raw)
                except (ValueError, TypeError):
                    link.log.warning("dingtalk stream: a frame that is not JSON was ignored")
                    continue
                if not isinstance(frame, dict):
                    continue
                kind = frame.get("type")
                headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
                topic = str(headers.get("topic") or "")
                if kind == "SYSTEM":
                    if topic in DISCONNECT_TOPICS:
                        link.log.info("dingtalk asked for a new connection")
                        return
                    await socket.send(ack_frame(frame))  # ping: echoed
                    continue
                if kind == "CALLBACK" and topic == BOT_TOPIC:
                    try:
                        body = json.loads(frame.get("data") or "")
                    except (ValueError, TypeError):
                        body = None
                    if not isinstance(body, dict):
                        link.log.warning("dingtalk stream: robot message whose data is not a JSON object; dropped")
                        await socket.send(ack_frame(frame))
                        continue
                    stored = await link.deliver(lambda channel, body=body: adapter.callback_inbounds(body))
                    if stored:
                        await socket.send(ack_frame(frame))
                    continue
                # Events and callbacks Parley did not subscribe to: acknowledged so they are not re-sent.
                link.log.info("dingtalk stream: %s frame ignored", str(kind)[:20], extra={"event_type": topic[:100]})
                await socket.send(ack_frame(frame))
            raise ConnectorError("dingtalk closed the connection")
