"""Fake platform ends of long connections, on 127.0.0.1, speaking the real wire formats.

* ``FakeSocketServer``: a real WebSocket server (the ``websockets`` library) on its own thread and
  event loop. It records every connection (path and query: the ticket) and every frame the client
  sends, pushes frames on request, greets new connections (Slack's ``hello``), answers frames
  through a callback (Feishu's pongs), and can drop connections the way a network does.
* ``FakeSlackSocketMode``: ``apps.connections.open``, ``chat.postMessage``, ``chat.update`` and
  ``chat.postEphemeral`` over HTTP and the Socket Mode socket.
* ``FakeDingTalkStream``: ``/v1.0/gateway/connections/open`` + the session webhook over HTTP and the
  Stream socket.
* ``FakeFeishuLongConnection``: ``/callback/ws/endpoint`` over HTTP and the binary (protobuf frame)
  socket, answering pings with pongs.
* ``FakeTelegramPolling``: ``getWebhookInfo`` / ``deleteWebhook`` / ``getUpdates`` (long polling that
  honours ``offset``), and ``sendMessage`` / ``answerCallbackQuery`` / ``editMessageReplyMarkup``
  from ``tests.fakes.platforms.FakeTelegramBot``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.fakes.platforms import FakeTelegramBot, sample_json
from tests.fakes.server import FakeServer, RecordedRequest, Response

QUIET = logging.getLogger("tests.fakes.socket")
QUIET.setLevel(logging.WARNING)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it is truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class FakeSocketServer:
    def __init__(
        self,
        *,
        greeting: dict | None = None,
        answer: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] = json.loads,
    ) -> None:
        self.greeting = greeting
        self.answer = answer  # a reply (dict: sent as JSON, bytes: as is) for a received frame, or None
        self.decode = decode  # how a received frame is recorded (JSON by default)
        self.received: list[Any] = []
        self.paths: list[str] = []
        self.live: list[ServerConnection] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-socket", daemon=True)
        self._server: Any = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeSocketServer:
        self._thread.start()

        async def start() -> Any:
            # The platform's side of the log is not Parley's: kept quiet, so tests that look for
            # secrets in the captured log see only what Parley wrote.
            return await serve(self._handle, "127.0.0.1", 0, logger=QUIET)

        self._server = self._call(start())
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> FakeSocketServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    # -- what the client did ---------------------------------------------------------------------
    @property
    def connects(self) -> int:
        with self._lock:
            return len(self.paths)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self.live)

    def frames(self, predicate: Callable[[Any], bool] = lambda f: True) -> list[Any]:
        with self._lock:
            return [f for f in self.received if predicate(f)]

    # -- what the platform does ------------------------------------------------------------------
    def push(self, frame: dict | bytes) -> None:
        """Send ``frame`` (a dict as JSON text, bytes as a binary frame) on the newest open connection
        (AssertionError when none is open)."""

        async def send() -> None:
            with self._lock:
                assert self.live, "no client is connected"
                connection = self.live[-1]
            await connection.send(frame if isinstance(frame, bytes) else json.dumps(frame, ensure_ascii=False))

        self._call(send())

    def drop(self) -> None:
        """Cut every open connection without a closing handshake, as a network failure does."""

        async def cut() -> None:
            with self._lock:
                connections = list(self.live)
            for connection in connections:
                connection.transport.abort()

        self._call(cut())

    async def _handle(self, connection: ServerConnection) -> None:
        with self._lock:
            self.paths.append(connection.request.path if connection.request else "")
            self.live.append(connection)
        try:
            if self.greeting is not None:
                await connection.send(json.dumps(self.greeting))
            async for raw in connection:
                frame = self.decode(raw)
                with self._lock:
                    self.received.append(frame)
                reply = self.answer(frame) if self.answer else None
                if reply is not None:
                    await connection.send(reply if isinstance(reply, bytes) else json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self.live.remove(connection)


# --- Slack Socket Mode ----------------------------------------------------------------------------

SLACK_APP_TOKEN = "xapp-1-A0PNCHHK2-5550001-socketmodetesttoken0001"
SLACK_BOT_TOKEN = "xoxb-1111-2222-socketmodebottoken"


class FakeSlackSocketMode:
    def __init__(self, http: FakeServer, socket: FakeSocketServer) -> None:
        self.http, self.socket = http, socket
        self.tickets: list[str] = []
        http.route("POST", "/api/apps.connections.open", self._open)
        http.route("POST", "/api/chat.postMessage", self._post)
        http.route("POST", "/api/chat.update", lambda req: (200, {"ok": True, "channel": "", "ts": ""}))
        http.route("POST", "/api/chat.postEphemeral", lambda req: (200, {"ok": True, "message_ts": "1731406013.0001"}))
        self._ts = itertools.count(1)

    def _open(self, req: RecordedRequest) -> Response:
        if req.headers.get("Authorization") != f"Bearer {SLACK_APP_TOKEN}":
            return Response(200, {"ok": False, "error": "invalid_auth"})
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        return Response(200, {"ok": True, "url": f"{self.socket.url}/link/?ticket={ticket}&app_id=A0PNCHHK2"})

    def _post(self, req: RecordedRequest) -> Response:
        data = req.json() if req.body.startswith(b"{") else {}
        return Response(200, {"ok": True, "channel": data.get("channel", ""), "ts": f"1731405999.{next(self._ts):06d}"})

    @property
    def opens(self) -> list[RecordedRequest]:
        return self.http.requests_to("/api/apps.connections.open")

    @property
    def sent(self) -> list[RecordedRequest]:
        return self.http.requests_to("/api/chat.postMessage")

    @property
    def updates(self) -> list[RecordedRequest]:
        return self.http.requests_to("/api/chat.update")

    def acks(self, envelope_id: str) -> list[dict]:
        return self.socket.frames(lambda f: f.get("envelope_id") == envelope_id)


SLACK_HELLO = {
    "type": "hello",
    "num_connections": 1,
    "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
    "connection_info": {"app_id": "A0PNCHHK2"},
}


def slack_envelope(*, event_id: str, text: str, envelope_id: str = "", retry_attempt: int = 0) -> dict:
    """An ``events_api`` envelope around the direct-message sample (as Socket Mode delivers it)."""
    payload = sample_json("slack", "message_im.json")
    payload["event_id"] = event_id
    payload["event"]["text"] = text
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
    }


def slack_rating_envelope(sent: dict, *, ts: str, token: str, thumb: str = "up", user: str = "U061F7AUR") -> dict:
    """The ``interactive`` envelope Socket Mode delivers when ``user`` clicks the rating button
    carrying ``token`` under the posted message ``sent`` (its ``chat.postMessage`` body; ``ts`` as
    Slack answered)."""
    payload = sample_json("slack", "block_actions.json")
    payload["user"]["id"] = user
    payload["container"].update(channel_id=sent["channel"], message_ts=ts)
    payload["channel"]["id"] = sent["channel"]
    payload["message"].update(ts=ts, text=sent["text"], blocks=sent.get("blocks") or [])
    payload["actions"][0].update(action_id=f"parley_rate_{thumb}", value=token)
    return {
        "envelope_id": str(uuid.uuid4()),
        "payload": payload,
        "type": "interactive",
        "accepts_response_payload": False,
    }


# --- DingTalk Stream ------------------------------------------------------------------------------

BOT_TOPIC = "/v1.0/im/bot/messages/get"


class FakeDingTalkStream:
    def __init__(self, http: FakeServer, socket: FakeSocketServer, *, client_id: str, client_secret: str) -> None:
        self.http, self.socket = http, socket
        self.client_id, self.client_secret = client_id, client_secret
        self.tickets: list[str] = []
        http.route("POST", "/v1.0/gateway/connections/open", self._open)
        http.route("POST", "/robot/sendBySession", lambda req: (200, {"errcode": 0, "errmsg": "ok"}))

    def _open(self, req: RecordedRequest) -> Response:
        body = req.json()
        if (body.get("clientId"), body.get("clientSecret")) != (self.client_id, self.client_secret):
            return Response(401, {"code": "InvalidAuthentication", "message": "clientId or clientSecret invalid"})
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        return Response(200, {"endpoint": f"{self.socket.url}/connect", "ticket": ticket})

    @property
    def opens(self) -> list[RecordedRequest]:
        return self.http.requests_to("/v1.0/gateway/connections/open")

    @property
    def sent(self) -> list[RecordedRequest]:
        return self.http.requests_to("/robot/sendBySession")

    def acks(self, message_id: str) -> list[dict]:
        return self.socket.frames(lambda f: (f.get("headers") or {}).get("messageId") == message_id)


def dingtalk_callback_frame(*, msg_id: str, session_webhook: str, message_id: str = "", text: str = "") -> dict:
    """A Stream-mode CALLBACK frame carrying a robot message, in the dingtalk-stream SDK's frame
    layout (``frames.py``: specVersion, type, headers with messageId/topic/…, data as JSON text)."""
    body = sample_json("dingtalk", "text_single.json")
    body["msgId"] = msg_id
    body["sessionWebhook"] = session_webhook
    body["sessionWebhookExpiredTime"] = int(time.time() * 1000) + 3_600_000
    if text:
        body["text"]["content"] = text
    return {
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {
            "appId": "b6e8f0a1-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
            "connectionId": "3c0e7b8a-1f2d-4c5b-9a6e-7d8f9e0a1b2c",
            "contentType": "application/json",
            "messageId": message_id or uuid.uuid4().hex,
            "time": str(int(time.time() * 1000)),
            "topic": BOT_TOPIC,
        },
        "data": json.dumps(body, ensure_ascii=False),
    }


def dingtalk_ping_frame(message_id: str) -> dict:
    return {
        "specVersion": "1.0",
        "type": "SYSTEM",
        "headers": {"contentType": "application/json", "messageId": message_id, "topic": "ping", "time": "1"},
        "data": json.dumps({"opaque": "6d1f0b3c"}),
    }


# --- Feishu long connection ----------------------------------------------------------------------


class FakeFeishuLongConnection:
    """``/callback/ws/endpoint`` and the messages API over HTTP, the binary-frame socket; pings are
    answered with pongs, as Feishu's gateway does."""

    def __init__(self, http: FakeServer, *, app_id: str, app_secret: str, ping_interval: float = 0.2) -> None:
        from apps.channels.platforms.feishu.connector import Frame, decode_frame, encode_frame

        self.http = http
        self.app_id, self.app_secret = app_id, app_secret
        self.ping_interval = ping_interval
        self.tickets: list[str] = []
        self._encode = encode_frame

        def pong(frame: Frame) -> bytes | None:
            if frame.method == 0 and frame.header("type") == "ping":
                return encode_frame(Frame(service=frame.service, method=0, headers=[("type", "pong")]))
            return None

        self.socket = FakeSocketServer(answer=pong, decode=decode_frame)
        http.route("POST", "/callback/ws/endpoint", self._endpoint)

    def __enter__(self) -> FakeFeishuLongConnection:
        self.socket.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.socket.stop()

    def _endpoint(self, req: RecordedRequest) -> Response:
        body = req.json()
        if (body.get("AppID"), body.get("AppSecret")) != (self.app_id, self.app_secret):
            return Response(200, {"code": 1000040343, "msg": "app_id or app_secret is invalid", "data": None})
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        url = f"{self.socket.url}/ws/v2?fpid=493&aid=552564&device_id=7381&access_key={ticket}&service_id=33554678"
        config = {"ReconnectCount": -1, "ReconnectInterval": 120, "ReconnectNonce": 30}
        return Response(
            200,
            {
                "code": 0,
                "msg": "ok",
                "data": {"URL": url, "ClientConfig": {**config, "PingInterval": self.ping_interval}},
            },
        )

    def event_frames(self, payload: dict, *, message_id: str, parts: int = 1, kind: str = "event") -> list[bytes]:
        """The data frame(s) carrying ``payload``, split in ``parts`` like large events are; ``kind``
        is the frame's ``type`` header ("card" for card callbacks)."""
        from apps.channels.platforms.feishu.connector import Frame

        data = json.dumps(payload, ensure_ascii=False).encode()
        size = -(-len(data) // parts)
        chunks = [data[i * size : (i + 1) * size] for i in range(parts)]
        return [
            self._encode(
                Frame(
                    seq_id=0,
                    log_id=0,
                    service=33554678,
                    method=1,
                    headers=[
                        ("type", kind),
                        ("message_id", message_id),
                        ("sum", str(parts)),
                        ("seq", str(seq)),
                        ("trace_id", "a1b2c3"),
                    ],
                    payload=chunk,
                )
            )
            for seq, chunk in enumerate(chunks)
        ]

    def acks(self, message_id: str) -> list[Any]:
        return self.socket.frames(lambda f: f.method == 1 and f.header("message_id") == message_id)

    def pings(self) -> list[Any]:
        return self.socket.frames(lambda f: f.method == 0 and f.header("type") == "ping")


# --- Telegram long polling ------------------------------------------------------------------------


class FakeTelegramPolling:
    """The Bot API for one token: updates queued by the test are served to ``getUpdates`` from the
    requested ``offset`` on (confirmed ones are forgotten, as Telegram does); a poll with nothing to
    give waits a little, like a long poll."""

    def __init__(self, http: FakeServer, *, token: str, webhook_url: str = "", wait: float = 0.3) -> None:
        self.http, self.token = http, token
        self.webhook_url = webhook_url
        self.wait = wait
        self.updates: list[dict] = []
        self.offsets: list[int | None] = []
        self._lock = threading.Lock()
        self.bot = FakeTelegramBot(http, token=token, first_message_id=1001)
        prefix = f"/bot{token}/"
        http.route("POST", prefix + "getWebhookInfo", self._info)
        http.route("POST", prefix + "deleteWebhook", self._delete)
        http.route("POST", prefix + "getUpdates", self._get_updates)
        http.route("POST", prefix + "sendMessage", self._send)

    def queue(self, update: dict) -> None:
        with self._lock:
            self.updates.append(update)

    def _info(self, req: RecordedRequest) -> Response:
        return Response(200, {"ok": True, "result": {"url": self.webhook_url, "pending_update_count": 0}})

    def _delete(self, req: RecordedRequest) -> Response:
        self.webhook_url = ""
        return Response(200, {"ok": True, "result": True, "description": "Webhook was deleted"})

    def _get_updates(self, req: RecordedRequest) -> Response:
        if self.webhook_url:
            return Response(
                409,
                {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                },
            )
        offset = req.json().get("offset")
        deadline = time.monotonic() + self.wait
        while True:
            with self._lock:
                self.offsets.append(offset)
                if isinstance(offset, int):
                    self.updates = [u for u in self.updates if u["update_id"] >= offset]
                pending = list(self.updates)
            if pending or time.monotonic() > deadline:
                return Response(200, {"ok": True, "result": pending})
            time.sleep(0.05)
            with self._lock:
                self.offsets.pop()

    def _send(self, req: RecordedRequest) -> Response:
        return Response(*self.bot.send_message(req))  # kept, so a click on its buttons can be edited

    @property
    def sent(self) -> list[RecordedRequest]:
        return self.http.requests_to(f"/bot{self.token}/sendMessage")

    @property
    def deletes(self) -> list[RecordedRequest]:
        return self.http.requests_to(f"/bot{self.token}/deleteWebhook")


def telegram_update(update_id: int, *, text: str) -> dict:
    update = sample_json("telegram", "private_message.json")
    update["update_id"] = update_id
    update["message"]["message_id"] = update_id % 100000
    update["message"]["text"] = text
    return update
