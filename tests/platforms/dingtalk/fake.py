"""The fake DingTalk API for the tests: a real HTTP server on 127.0.0.1 (``tests.fakes.server``)
speaking the platform's wire format, request builders that sign (and encrypt) callbacks as the
platform does, and the platform end of its long connection (``tests.fakes.connectors.FakeSocketServer``)."""

from __future__ import annotations

import itertools
import json
import time
import uuid

from apps.channels.platforms.dingtalk.adapter import sign as dingtalk_sign
from tests.fakes.connectors import FakeSocketServer
from tests.fakes.platforms import sample_json
from tests.fakes.server import FakeServer, RecordedRequest, Response


def install_dingtalk(server: FakeServer, *, token: str = "dingtalk-access-token-0001") -> None:
    counter = itertools.count(1)

    def access_token(req: RecordedRequest):
        return 200, {"accessToken": token, "expireIn": 7200}

    def robot(req: RecordedRequest):
        if req.headers.get("x-acs-dingtalk-access-token") != token:
            return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": "r1"}
        return 200, {
            "processQueryKey": f"pqk-{next(counter)}",
            "invalidStaffIdList": [],
            "flowControlledStaffIdList": [],
        }

    def session(req: RecordedRequest):
        return 200, {"errcode": 0, "errmsg": "ok"}

    server.route("POST", "/v1.0/oauth2/accessToken", access_token)
    server.route("POST", "/v1.0/robot/", robot)
    server.route("POST", "/robot/sendBySession", session)


class FakeDingTalkCards:
    """AI cards as api.dingtalk.com keeps them: created (``POST /v1.0/card/instances``), delivered
    to a chat (``…/deliver``), their content streamed (``PUT /v1.0/card/streaming``) and their
    parameters updated (``PUT /v1.0/card/instances``). Each card keeps what the chat shows: its
    parameters, every streamed version of its content, and whether streaming was finalized;
    streaming into a card that was never delivered, or after ``isFinalize``, is refused. Robot
    messages (``install_dingtalk``) land in ``robot_messages``."""

    def __init__(self, server: FakeServer, *, token: str = "dingtalk-access-token-0001") -> None:
        install_dingtalk(server, token=token)
        self.server, self.token = server, token
        self.cards: dict[str, dict] = {}
        self.refused = 0  # DingTalk publishes no rate for card streaming: none is enforced here
        server.route("POST", "/v1.0/card/instances", self._create)
        server.route("POST", "/v1.0/card/instances/deliver", self._deliver)
        server.route("PUT", "/v1.0/card/instances", self._update)
        server.route("PUT", "/v1.0/card/streaming", self._stream)

    def _refused(self, req: RecordedRequest):
        if req.headers.get("x-acs-dingtalk-access-token") != self.token:
            return 401, {"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": "r1"}
        return None

    def _create(self, req: RecordedRequest):
        if refused := self._refused(req):
            return refused
        body = req.json()
        params = dict(body["cardData"]["cardParamMap"])
        self.cards[body["outTrackId"]] = {
            "template": body["cardTemplateId"],
            "params": params,
            "versions": [],
            "space": None,
            "finalized": False,
        }
        return 200, {"success": True, "result": body["outTrackId"]}

    def _deliver(self, req: RecordedRequest):
        if refused := self._refused(req):
            return refused
        body = req.json()
        card = self.cards.get(body.get("outTrackId"))
        if card is None:
            return 400, {"code": "param.cardNotExist", "message": "card instance not found", "success": False}
        card["space"] = body.get("openSpaceId")
        return 200, {"success": True, "result": [{"spaceId": body.get("openSpaceId"), "success": True}]}

    def _stream(self, req: RecordedRequest):
        if refused := self._refused(req):
            return refused
        body = req.json()
        card = self.cards.get(body.get("outTrackId"))
        if card is None or card["space"] is None:
            return 400, {"code": "param.cardNotExist", "message": "card instance not found", "success": False}
        if card["finalized"]:
            return 400, {"code": "param.streamingFinished", "message": "streaming already finished", "success": False}
        key = body["key"]
        card["params"][key] = body["content"] if body.get("isFull") else card["params"].get(key, "") + body["content"]
        card["versions"].append(card["params"][key])
        card["finalized"] = bool(body.get("isFinalize"))
        return 200, {"success": True}

    def _update(self, req: RecordedRequest):
        if refused := self._refused(req):
            return refused
        body = req.json()
        card = self.cards.get(body.get("outTrackId"))
        if card is None:
            return 400, {"code": "param.cardNotExist", "message": "card instance not found", "success": False}
        card["params"].update(body["cardData"]["cardParamMap"])
        return 200, {"success": True}

    def delivered(self) -> list[dict]:
        """The cards in chats, in the order they were created."""
        return [c for c in self.cards.values() if c["space"]]

    @property
    def robot_messages(self) -> list[RecordedRequest]:
        return self.server.requests_to("/v1.0/robot/")

    @property
    def streams(self) -> list[RecordedRequest]:
        return self.server.requests_to("/v1.0/card/streaming")


def dingtalk_headers(secret: str, *, timestamp_ms: int | None = None) -> dict[str, str]:
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return {"Content-Type": "application/json; charset=utf-8", "timestamp": ts, "sign": dingtalk_sign(ts, secret)}


# --- the long connection ----------------------------------------------------------------------


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
