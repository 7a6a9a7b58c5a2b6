"""Fake IM platform APIs (Feishu, WeCom, DingTalk, Slack, the Telegram Bot API) on a FakeServer, and
request builders that sign (and encrypt) callbacks the way each platform does.

    install_feishu(fake_server)        # token, messages, bot info routes in Feishu's wire format
    body, headers = feishu_event(payload, encrypt_key="k")
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from apps.channels.platforms.dingtalk.adapter import sign as dingtalk_sign
from apps.channels.platforms.feishu import crypto as feishu_crypto
from apps.channels.platforms.wecom import crypto as wecom_crypto
from tests.fakes.server import FakeServer, RecordedRequest

PLATFORMS_DIR = Path(__file__).resolve().parents[2] / "apps" / "channels" / "platforms"


def sample(platform: str, name: str) -> str:
    """The text of a payload sample kept beside the platform's adapter."""
    return (PLATFORMS_DIR / platform / "samples" / name).read_text(encoding="utf-8")


def sample_json(platform: str, name: str) -> dict:
    return json.loads(sample(platform, name))


# --- Feishu ---------------------------------------------------------------------------------------


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


# --- WeCom ----------------------------------------------------------------------------------------


def install_wecom(server: FakeServer, *, token: str = "wecom-access-token-0001") -> None:
    counter = itertools.count(1)

    def gettoken(req: RecordedRequest):
        return 200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    def send(req: RecordedRequest):
        if req.query.get("access_token") != [token]:
            return 200, {"errcode": 40014, "errmsg": "invalid access_token"}
        return 200, {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"wecom-msg-{next(counter)}"}

    server.route("GET", "/cgi-bin/gettoken", gettoken)
    server.route("POST", "/cgi-bin/message/send", send)


def wecom_callback(
    plaintext: str,
    *,
    token: str,
    encoding_aes_key: str,
    corp_id: str,
    json_mode: bool = False,
    timestamp: str | None = None,
    nonce: str = "1372623149",
) -> tuple[dict[str, str], bytes]:
    """(query, body) of a WeCom callback carrying ``plaintext``, encrypted and signed."""
    ts = timestamp or str(int(time.time()))
    encrypt = wecom_crypto.encrypt(plaintext, encoding_aes_key, corp_id)
    sig = wecom_crypto.signature(token, ts, nonce, encrypt)
    if json_mode:
        body = json.dumps({"tousername": corp_id, "encrypt": encrypt, "agentid": "1000002"}).encode()
    else:
        body = (
            f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            "<AgentID><![CDATA[1000002]]></AgentID></xml>"
        ).encode()
    return {"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body


def xml_encrypt_value(body: str) -> str:
    """The ``<Encrypt>`` text of a WeCom callback body."""
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext("Encrypt") or ""


# --- DingTalk -------------------------------------------------------------------------------------


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


def dingtalk_headers(secret: str, *, timestamp_ms: int | None = None) -> dict[str, str]:
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return {"Content-Type": "application/json; charset=utf-8", "timestamp": ts, "sign": dingtalk_sign(ts, secret)}


def as_meta(headers: dict[str, str]) -> dict[str, Any]:
    """Headers as Django test-client keyword arguments."""
    out: dict[str, Any] = {}
    for k, v in headers.items():
        if k.lower() == "content-type":
            out["content_type"] = v
        else:
            out["HTTP_" + k.upper().replace("-", "_")] = v
    return out


# --- Slack ----------------------------------------------------------------------------------------


def install_slack(server: FakeServer) -> None:
    """``chat.postMessage``, ``chat.update`` and ``chat.postEphemeral`` as slack.com answers them."""
    counter = itertools.count(1)

    def post_message(req: RecordedRequest):
        data = req.json()
        return 200, {"ok": True, "channel": data["channel"], "ts": f"1731405999.{next(counter):06d}", "message": data}

    def update(req: RecordedRequest):
        data = req.json()
        return 200, {"ok": True, "channel": data["channel"], "ts": data["ts"], "text": data.get("text", "")}

    def ephemeral(req: RecordedRequest):
        return 200, {"ok": True, "message_ts": "1731406013.000100"}

    server.route("POST", "/api/chat.postMessage", post_message)
    server.route("POST", "/api/chat.update", update)
    server.route("POST", "/api/chat.postEphemeral", ephemeral)


def slack_signed(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The ``X-Slack-Request-Timestamp`` / ``X-Slack-Signature`` headers Slack sends with ``body``."""
    import hashlib
    import hmac

    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slack_interaction(payload: dict) -> bytes:
    """The form body of an interactivity request: ``payload=<JSON>``, URL-encoded."""
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()


# --- Telegram -------------------------------------------------------------------------------------

TELEGRAM_ASKER = {"id": 412503776, "is_bot": False, "first_name": "Mei", "username": "meilin", "language_code": "en"}


def _telegram_error(status: int, description: str) -> tuple[int, dict]:
    return status, {"ok": False, "error_code": status, "description": description}


class FakeTelegramBot:
    """``sendMessage``, ``answerCallbackQuery``, ``editMessageReplyMarkup`` and ``setWebhook`` for one
    bot token, as api.telegram.org answers them. Each sent message is kept (with its keyboard), so
    an edit of a message that does not exist, or one that changes nothing, is refused the way
    Telegram refuses it; button ``callback_data`` outside 1–64 bytes is refused on send."""

    def __init__(self, server: FakeServer, *, token: str, first_message_id: int = 2000, bot_id: int = 0) -> None:
        self.server, self.token = server, token
        self.bot = {"id": bot_id or int(token.split(":", 1)[0]), "is_bot": True, "first_name": "Parley"}
        self.messages: dict[tuple[Any, int], dict] = {}
        self._ids = itertools.count(first_message_id)
        prefix = f"/bot{token}/"
        server.route("POST", prefix + "sendMessage", self.send_message)
        server.route("POST", prefix + "answerCallbackQuery", self._answer)
        server.route("POST", prefix + "editMessageReplyMarkup", self._edit)
        server.route("POST", prefix + "setWebhook", lambda req: (200, {"ok": True, "result": True}))

    def send_message(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        markup = body.get("reply_markup")
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    return _telegram_error(400, "Bad Request: BUTTON_DATA_INVALID")
        message = {
            "message_id": next(self._ids),
            "from": self.bot,
            "chat": {"id": body["chat_id"], "type": "private" if int(body["chat_id"]) > 0 else "supergroup"},
            "date": int(time.time()),
            "text": body.get("text", ""),
        }
        if markup:
            message["reply_markup"] = markup
        self.messages[(body["chat_id"], message["message_id"])] = message
        return 200, {"ok": True, "result": message}

    def _answer(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        if not body.get("callback_query_id"):
            return _telegram_error(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        if len(body.get("text") or "") > 200:
            return _telegram_error(400, "Bad Request: MESSAGE_TOO_LONG")
        return 200, {"ok": True, "result": True}

    def _edit(self, req: RecordedRequest) -> tuple[int, dict]:
        body = req.json()
        message = self.messages.get((body.get("chat_id"), body.get("message_id")))
        if message is None:
            return _telegram_error(400, "Bad Request: message to edit not found")
        if message.get("reply_markup") == body.get("reply_markup"):
            return _telegram_error(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        message["reply_markup"] = body.get("reply_markup")
        message["edit_date"] = int(time.time())
        return 200, {"ok": True, "result": message}

    def _requests(self, method: str) -> list[RecordedRequest]:
        return self.server.requests_to(f"/bot{self.token}/{method}")

    @property
    def sent(self) -> list[RecordedRequest]:
        return self._requests("sendMessage")

    @property
    def answers(self) -> list[RecordedRequest]:
        return self._requests("answerCallbackQuery")

    @property
    def edits(self) -> list[RecordedRequest]:
        return self._requests("editMessageReplyMarkup")

    def message(self, chat_id: Any, message_id: int) -> dict:
        """A sent message as Telegram now holds it (with its current keyboard)."""
        return self.messages[(chat_id, message_id)]


_callback_ids = itertools.count(4204611973380061)


def telegram_callback(
    message: dict, button: int = 0, *, update_id: int, user: dict | None = None, data: Any = ..., language: str = ""
) -> dict:
    """The update Telegram sends when ``user`` (default: the asker of the private-chat sample)
    presses button ``button`` of the bot's ``message`` (as Telegram holds it, keyboard included).
    ``data`` replaces what the button carries (a bad client can send anything)."""
    sender = dict(user or TELEGRAM_ASKER)
    if language:
        sender["language_code"] = language
    row = message.get("reply_markup", {}).get("inline_keyboard", [[]])[0]
    query: dict[str, Any] = {
        "id": str(next(_callback_ids)),
        "from": sender,
        "message": message,
        "chat_instance": "-6312874162357361243",
    }
    pressed = row[button]["callback_data"] if data is ... else data
    if pressed is not None:
        query["data"] = pressed
    return {"update_id": update_id, "callback_query": query}
