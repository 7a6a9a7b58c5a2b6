"""Feishu / Lark long connection (the protocol of lark-oapi's ``lark_oapi.ws.Client``).

``POST /callback/ws/endpoint`` with ``{AppID, AppSecret}`` answers ``{code: 0, data: {URL,
ClientConfig}}``; ``URL`` is a one-off ``wss://`` address whose query names the connection
(``device_id``) and the service (``service_id``). Frames are binary protobuf ``pbbp2.Frame``
messages (below). The client sends a ``ping`` control frame every ``PingInterval`` seconds (the
server answers ``pong``, possibly with a new ClientConfig). An event is a data frame with headers
``type: event``, ``message_id``, ``sum`` / ``seq`` (large events come in several parts) and a JSON
payload — the same schema 2.0 event a webhook POSTs, unencrypted — so the Feishu adapter's
``parse`` reads it (de-duplicated on ``header.event_id``). It is acknowledged by sending the frame
back with the payload ``{"code": 200}``. Replies go out through the messages API as for webhooks.
A card callback (``card.action.trigger``, a click on an answer's rating button) comes as a frame of
type ``card`` (or ``event``); its answer — the toast and the redrawn card the webhook would return —
goes back base64-encoded in the ack: ``{"code": 200, "data": "<base64 JSON>"}``.

A small client on ``websockets`` rather than lark-oapi's: the SDK runs its own event loop made at
import time, reconnects on its own schedule without telling its caller, has no way to stop, and
brings a vendored copy of protobuf; the frame has nine fields, encoded here by hand.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets

from apps.channels.clicks import answer_rating_click
from apps.channels.connectors.base import Connector, ConnectorError, Link, post_json, wire_logger
from apps.channels.platforms import http
from apps.channels.platforms.base import RawRequest, WebhookRejected
from apps.channels.platforms.feishu.adapter import CARD_ACTION_EVENT
from apps.channels.platforms.registry import get_adapter
from apps.core import netguard

ENDPOINT_PATH = "/callback/ws/endpoint"
METHOD_CONTROL, METHOD_DATA = 0, 1
#: Endpoint codes no retry can fix (bad credentials, the app not allowed long connections).
PERMANENT_CODES = {403, 1000040344, 1000040350}
PART_TTL = 10.0  # seconds the parts of a split event are kept waiting for the rest

logger = logging.getLogger(__name__)


# --- pbbp2.Frame (proto2): SeqID=1 uint64, LogID=2 uint64, service=3 int32, method=4 int32,
# headers=5 repeated Header{key=1 string, value=2 string}, payload_encoding=6 string,
# payload_type=7 string, payload=8 bytes, LogIDNew=9 string.


@dataclass
class Frame:
    seq_id: int = 0
    log_id: int = 0
    service: int = 0
    method: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload_encoding: str = ""
    payload_type: str = ""
    payload: bytes = b""
    log_id_new: str = ""

    def header(self, key: str) -> str:
        return next((v for k, v in self.headers if k == key), "")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 values are sent as ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def encode_frame(frame: Frame) -> bytes:
    out = b"".join(
        _field(n, v) for n, v in ((1, frame.seq_id), (2, frame.log_id), (3, frame.service), (4, frame.method))
    )
    for key, value in frame.headers:
        out += _field(5, _field(1, key) + _field(2, value))
    for number, value in (
        (6, frame.payload_encoding),
        (7, frame.payload_type),
        (8, frame.payload),
        (9, frame.log_id_new),
    ):
        if value:
            out += _field(number, value)
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):  # fixed 64 / 32 bits: not in this schema, skipped
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def decode_frame(data: bytes) -> Frame:
    """Raises ValueError for bytes that are not a frame."""
    frame = Frame()
    for number, value in _fields(data):
        if isinstance(value, int):
            signed = value - (1 << 64) if value >= 1 << 63 else value
            if number == 1:
                frame.seq_id = value
            elif number == 2:
                frame.log_id = value
            elif number == 3:
                frame.service = signed
            elif number == 4:
                frame.method = signed
        elif number == 5:
            parts = {n: v for n, v in _fields(value) if isinstance(v, bytes)}
            frame.headers.append((parts.get(1, b"").decode(), parts.get(2, b"").decode()))
        elif number == 6:
            frame.payload_encoding = value.decode()
        elif number == 7:
            frame.payload_type = value.decode()
        elif number == 8:
            frame.payload = value
        elif number == 9:
            frame.log_id_new = value.decode()
    return frame


def ping_frame(service: int) -> bytes:
    return encode_frame(Frame(service=service, method=METHOD_CONTROL, headers=[("type", "ping")]))


def is_card_action(payload: bytes) -> bool:
    """Whether an event frame carries a card callback (``card.action.trigger``) rather than an event."""
    try:
        header = json.loads(payload).get("header")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False
    return isinstance(header, dict) and header.get("event_type") == CARD_ACTION_EVENT


def card_action(channel: Any, body: bytes) -> bytes | None:
    """A card callback over the long connection, handled as the webhook handles it: a rating click
    is recorded and answered with the adapter's toast (and redrawn card), whose JSON goes back in
    the frame's ack. None (a bare ack) for other cards' actions and for clicks that cannot be read."""
    adapter = get_adapter("feishu")
    request = RawRequest.event(body)
    try:
        click = adapter.rating_click(request, channel)
    except WebhookRejected as exc:
        logger.warning("feishu card action dropped: %s", exc.reason)
        return None
    if click is None:
        logger.info("feishu card action over the long connection is not Parley's; acknowledged")
        return None
    return answer_rating_click(adapter, channel, request, click).content


class FeishuConnector(Connector):
    platform = "feishu"
    required_credentials = ("app_id", "app_secret")
    console_hint = (
        "Events & Callbacks → Event configuration: choose “Receive events through persistent connection” "
        "(使用长连接接收事件); keep the im.message.receive_v1 subscription. For the rating buttons, "
        "Callback configuration: the persistent connection too (使用长连接接收回调), with card.action.trigger."
    )
    rating_clicks = True

    def __init__(self) -> None:
        self.ping_interval = 120.0
        self._parts: dict[str, tuple[float, list[bytes | None]]] = {}

    async def open(self, channel: Any) -> tuple[str, int]:
        """The socket URL and service id from the endpoint. Raises ``ConnectorError``."""
        creds = channel.credentials or {}
        app_id, secret = str(creds.get("app_id") or ""), str(creds.get("app_secret") or "")
        if not app_id or not secret:
            raise ConnectorError("channel has no app_id / app_secret", permanent=True)
        url = get_adapter("feishu").api_base(channel) + ENDPOINT_PATH
        async with netguard.guarded_async_client(timeout=http.timeout()) as client:
            status, data = await post_json(
                client, url, {"AppID": app_id, "AppSecret": secret}, what="ws endpoint", headers={"locale": "en"}
            )
        if status != 200:
            raise ConnectorError(f"ws endpoint: HTTP {status}")
        code = data.get("code")
        if code != 0:
            message = str(data.get("msg") or "")[:120]
            raise ConnectorError(f"ws endpoint: code {code} {message}".strip(), permanent=code in PERMANENT_CODES)
        body = data.get("data") if isinstance(data.get("data"), dict) else {}
        self._configure(body.get("ClientConfig"))
        socket_url = body.get("URL")
        if not isinstance(socket_url, str) or urlsplit(socket_url).scheme not in ("wss", "ws"):
            raise ConnectorError("ws endpoint answered without a WebSocket URL")
        try:
            service = int(parse_qs(urlsplit(socket_url).query).get("service_id", ["0"])[0])
        except ValueError:
            service = 0
        return socket_url, service

    def _configure(self, config: Any) -> None:
        if isinstance(config, dict) and isinstance(config.get("PingInterval"), int | float):
            self.ping_interval = max(0.05, float(config["PingInterval"]))

    async def run(self, link: Link) -> None:
        url, service = await self.open(link.channel)
        async with websockets.connect(
            url, logger=wire_logger, open_timeout=10, ping_interval=None, close_timeout=3, max_size=2**22
        ) as socket:
            link.connected()
            pinger = asyncio.create_task(self._ping(socket, service))
            try:
                async for raw in socket:
                    if isinstance(raw, str):
                        continue  # the protocol is binary
                    try:
                        frame = decode_frame(raw)
                    except ValueError:
                        link.log.warning("feishu socket: a frame that is not a protobuf Frame was ignored")
                        continue
                    if frame.method == METHOD_CONTROL:
                        if frame.header("type") == "pong" and frame.payload:
                            with contextlib.suppress(ValueError):
                                self._configure(json.loads(frame.payload))
                        continue
                    if frame.method == METHOD_DATA:
                        await self._data(socket, frame, link)
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)
            raise ConnectorError("feishu closed the connection")

    async def _ping(self, socket: Any, service: int) -> None:
        while True:
            await socket.send(ping_frame(service))
            await asyncio.sleep(self.ping_interval)

    async def _data(self, socket: Any, frame: Frame, link: Link) -> None:
        kind = frame.header("type")
        payload = self._combine(frame)
        if payload is None:
            return  # more parts to come
        started = time.monotonic()
        answer: dict[str, Any] = {"code": 200}
        if kind == "card" or (kind == "event" and is_card_action(payload)):
            body = payload
            response = await link.call(lambda channel: card_action(channel, body))
            if response:
                answer["data"] = base64.b64encode(response).decode()
        elif kind == "event":
            body = payload
            stored = await link.deliver(lambda channel: get_adapter("feishu").parse(RawRequest.event(body), channel))
            if not stored:
                return  # not acknowledged: Feishu pushes it again
        else:
            link.log.warning("feishu %s frame over the long connection is not handled; acknowledged", kind[:20])
        elapsed_ms = int((time.monotonic() - started) * 1000)
        frame.headers.append(("biz_rt", str(elapsed_ms)))
        frame.payload = json.dumps(answer, ensure_ascii=False).encode()
        await socket.send(encode_frame(frame))

    def _combine(self, frame: Frame) -> bytes | None:
        """The whole payload of a (possibly split) event, or None while parts are missing."""
        try:
            total, seq = int(frame.header("sum") or 1), int(frame.header("seq") or 0)
        except ValueError:
            total, seq = 1, 0
        if total <= 1:
            return frame.payload
        now = time.monotonic()
        self._parts = {k: v for k, v in self._parts.items() if v[0] > now}
        key = frame.header("message_id")
        _, parts = self._parts.get(key, (now + PART_TTL, [None] * total))
        if len(parts) != total or not 0 <= seq < total:
            return None
        parts[seq] = frame.payload
        if any(p is None for p in parts):
            self._parts[key] = (now + PART_TTL, parts)
            return None
        self._parts.pop(key, None)
        return b"".join(p for p in parts if p is not None)
