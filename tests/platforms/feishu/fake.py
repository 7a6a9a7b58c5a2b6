"""The fake Feishu / Lark API for the tests: a real HTTP server on 127.0.0.1 (``tests.fakes.server``)
speaking the platform's wire format, request builders that sign (and encrypt) callbacks as the
platform does, and the platform end of its long connection (``tests.fakes.connectors.FakeSocketServer``)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from apps.channels.platforms.feishu import crypto as feishu_crypto
from tests.fakes.connectors import FakeSocketServer
from tests.fakes.server import FakeServer, RecordedRequest, Response


def install_feishu(
    server: FakeServer, *, token: str = "t-g1044qeGEDXTB6NDJOGV4JQCYDGHRBARFTGT1234", bot_open_id: str = ""
) -> None:
    """Tenant token, message send/reply and bot info, as open.feishu.cn answers them. With a
    ``bot_open_id`` the bot-info route answers with it (otherwise 404)."""
    counter = itertools.count(1)

    def token_route(req: RecordedRequest):
        return 200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200}

    def messages(req: RecordedRequest):
        if req.headers.get("Authorization") != f"Bearer {token}":
            return 400, {
                "code": 99991663,
                "msg": "Invalid access token for authorization. Please make a request with token attached.",
            }
        n = next(counter)
        return 200, {"code": 0, "msg": "success", "data": {"message_id": f"om_sent{n:04d}", "msg_type": "interactive"}}

    server.route("POST", "/open-apis/auth/v3/tenant_access_token/internal", token_route)
    server.route("POST", "/open-apis/im/v1/messages", messages)
    if bot_open_id:
        server.route(
            "GET",
            "/open-apis/bot/v3/info",
            lambda req: (
                200,
                {"code": 0, "msg": "ok", "bot": {"activate_status": 2, "app_name": "Parley", "open_id": bot_open_id}},
            ),
        )


class FakeFeishuMessages:
    """Sending, replying, updating (``PATCH``) and recalling (``DELETE``) card messages, as
    open.feishu.cn answers them, keeping each card as the chat shows it (``versions``: the card's
    markdown after each send or update). A card can be updated only when it is shared
    (``config.update_multi``) before and after, and at most 5 times a second (Feishu's limit per
    message); a faster update is refused with code 230020 and counted in ``refused``."""

    UPDATES_PER_SECOND = 5

    def __init__(self, server: FakeServer, *, token: str = "t-g1044qeGEDXTB6NDJOGV4JQCYDGHRBARFTGT1234") -> None:
        install_feishu(server, token=token)
        self.server, self.token = server, token
        self.messages: dict[str, dict] = {}
        self.refused = 0
        self._updates: dict[str, list[float]] = {}
        self._counter = itertools.count(1)
        server.route("POST", "/open-apis/im/v1/messages", self._send)
        server.route("PATCH", "/open-apis/im/v1/messages/", self._patch)
        server.route("DELETE", "/open-apis/im/v1/messages/", self._delete)

    def _authorised(self, req: RecordedRequest) -> bool:
        return req.headers.get("Authorization") == f"Bearer {self.token}"

    def _send(self, req: RecordedRequest):
        if not self._authorised(req):
            return 400, {"code": 99991663, "msg": "Invalid access token for authorization."}
        body = req.json()
        card = json.loads(body["content"])
        message_id = f"om_sent{next(self._counter):04d}"
        self.messages[message_id] = {"message_id": message_id, "card": card, "versions": [_card_text(card)]}
        return 200, {"code": 0, "msg": "success", "data": {"message_id": message_id, "msg_type": "interactive"}}

    def _patch(self, req: RecordedRequest):
        if not self._authorised(req):
            return 400, {"code": 99991663, "msg": "Invalid access token for authorization."}
        message_id = req.path.rsplit("/", 1)[-1]
        message = self.messages.get(message_id)
        if message is None:
            return 400, {"code": 230001, "msg": "message not found"}
        card = json.loads(req.json()["content"])
        if not (message["card"].get("config", {}).get("update_multi") and card.get("config", {}).get("update_multi")):
            return 400, {"code": 230099, "msg": "only a shared card (config.update_multi) can be updated"}
        now = time.monotonic()
        recent = [t for t in self._updates.get(message_id, []) if now - t < 1.0]
        if len(recent) >= self.UPDATES_PER_SECOND:
            self.refused += 1
            return 400, {"code": 230020, "msg": "This operation triggers the frequency limit."}
        self._updates[message_id] = [*recent, now]
        message["card"] = card
        message["versions"].append(_card_text(card))
        return 200, {"code": 0, "msg": "success", "data": {}}

    def _delete(self, req: RecordedRequest):
        if self.messages.pop(req.path.rsplit("/", 1)[-1], None) is None:
            return 400, {"code": 230001, "msg": "message not found"}
        return 200, {"code": 0, "msg": "success", "data": {}}

    def chat(self) -> list[dict]:
        """The bot's cards as the chat shows them now, oldest first."""
        return [self.messages[k] for k in sorted(self.messages)]

    @property
    def sends(self) -> list[RecordedRequest]:
        return [r for r in self.server.requests_to("/open-apis/im/v1/messages") if r.method == "POST"]

    @property
    def patches(self) -> list[RecordedRequest]:
        return [r for r in self.server.requests_to("/open-apis/im/v1/messages/") if r.method == "PATCH"]


def _card_text(card: dict) -> str:
    return "".join(e.get("content", "") for e in card.get("elements", []) if e.get("tag") == "markdown")


def feishu_event(
    payload: dict | str, *, encrypt_key: str = "", timestamp: str | None = None, nonce: str = "a1b2c3d4"
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Feishu POSTs for ``payload``: encrypted and signed when an Encrypt Key is set."""
    plain = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if not encrypt_key:
        return plain.encode(), headers
    body = json.dumps({"encrypt": feishu_crypto.encrypt(plain, encrypt_key)}).encode()
    ts = timestamp or str(int(time.time()))
    headers.update(
        {
            "X-Lark-Request-Timestamp": ts,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": feishu_crypto.signature(ts, nonce, encrypt_key, body),
        }
    )
    return body, headers


# --- the long connection ----------------------------------------------------------------------


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
