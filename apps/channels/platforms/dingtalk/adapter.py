"""DingTalk enterprise-internal app robot, HTTP receive mode.

Inbound: headers ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(appSecret, timestamp + "\\n" +
appSecret)); requests more than an hour off are refused. The body is not signed, so a captured
signature could carry a forged body within that hour: a signature is accepted for one ``msgId``
only (remembered in the cache). Text (and rich-text) messages from one-to-one and group chats,
de-duplicated on ``msgId``.

Outbound: the callback's ``sessionWebhook`` (Markdown, no token) while it is valid and only when its
host is DingTalk's own or the channel's ``api_base`` host; otherwise the robot API with an access
token cached per channel in the Django cache.

Signature and HTTP calls are written on hmac + httpx rather than taken from dingtalk-stream: that
SDK targets Stream mode (a WebSocket client), keeps tokens in process memory and calls out with
requests; the HTTP-mode signature is one HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse

from apps.channels.markdown import Dialect, plain_text, render_dialect, split_text

from .. import http
from ..base import (
    AccessTokenCache,
    Inbound,
    MalformedRequest,
    OutboundReply,
    PlatformAdapter,
    PlatformError,
    RawRequest,
    SentRef,
    SignatureInvalid,
    Target,
    WebhookRejected,
    as_int,
)

logger = logging.getLogger(__name__)
#: Seconds between updates of a streamed AI card (DingTalk publishes no rate for card streaming;
#: two a second stays well inside the app-wide API limits).
STREAM_INTERVAL = 0.5
#: An AI card's ``flowStatus``: processing, finished, failed (DingTalk's AI card states).
CARD_PROCESSING, CARD_FINISHED, CARD_FAILED = "1", "3", "5"
TOKENS = AccessTokenCache("dingtalk")

MAX_SKEW_MS = 3600 * 1000
#: DingTalk's own hosts: a sessionWebhook elsewhere is not followed (the body that carries it is unsigned).
DINGTALK_HOSTS = frozenset({"oapi.dingtalk.com", "api.dingtalk.com"})
#: Bytes per message; DingTalk's limit is about 20 KB.
CONTENT_LIMIT = 18_000
#: Session webhooks are used only with this much life left (ms).
SESSION_MARGIN_MS = 60_000
TOKEN_INVALID_CODES = frozenset(
    {"InvalidAuthentication", "InvalidAccessToken", "Forbidden.AccessDenied.AccessTokenExpired"}
)
#: Message types Parley receives but cannot answer (answered 200, not stored).
IGNORED_MSGTYPES = frozenset({"picture", "audio", "video", "file", "unknownMsgType"})
MARKDOWN = Dialect(strike="", code_inline=False, code_blocks=False, tables=False, hr="———")


def sign(timestamp: str, secret: str) -> str:
    """The ``sign`` header for ``timestamp`` (ms, as sent): raw base64 (not URL-encoded) HMAC-SHA256."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class DingTalkAdapter(PlatformAdapter):
    platform = "dingtalk"
    default_api_base = "https://api.dingtalk.com"
    credential_keys = ("client_id", "client_secret", "robot_code", "card_template_id", "card_content_key")
    required_credentials = ("client_id", "client_secret")

    # --- inbound -------------------------------------------------------------------------------

    def handshake(self, request: RawRequest, channel: Any) -> HttpResponse | None:
        if request.method != "POST":
            raise WebhookRejected(405, "DingTalk callbacks are POSTed")
        return None  # DingTalk has no URL handshake

    def verify(self, request: RawRequest, channel: Any) -> None:
        secret = str((channel.credentials or {}).get("client_secret") or "")
        ts = request.headers.get("timestamp", "")
        given = request.headers.get("sign", "")
        if not (secret and ts and given):
            raise SignatureInvalid("timestamp or sign missing")
        if not ts.isdigit() or len(ts) > 16:
            raise SignatureInvalid("bad timestamp")
        if abs(time.time() * 1000 - int(ts)) > MAX_SKEW_MS:
            raise SignatureInvalid("stale timestamp")
        if not hmac.compare_digest(sign(ts, secret).encode(), given.encode()):
            raise SignatureInvalid()

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedRequest("body is not JSON") from exc
        if not isinstance(body, dict):
            raise MalformedRequest("body is not a JSON object")
        msg_id = body.get("msgId")
        if not isinstance(msg_id, str) or not msg_id:
            raise MalformedRequest("msgId missing")
        self._claim_signature(request, channel, msg_id)
        return self.callback_inbounds(body)

    def callback_inbounds(self, body: dict[str, Any]) -> list[Inbound]:
        """The messages in a robot callback body: an HTTP-mode POST body, or the ``data`` of a Stream
        mode CALLBACK frame (the same JSON). [] for messages deliberately ignored; raises
        ``MalformedRequest`` without a ``msgId``."""
        msg_id = body.get("msgId")
        if not isinstance(msg_id, str) or not msg_id:
            raise MalformedRequest("msgId missing")
        msgtype = body.get("msgtype") if isinstance(body.get("msgtype"), str) else ""
        if msgtype == "text":
            text_obj = body.get("text") if isinstance(body.get("text"), dict) else {}
            text = str(text_obj.get("content") or "")
        elif msgtype == "richText":
            content = body.get("content") if isinstance(body.get("content"), dict) else {}
            parts = content.get("richText") if isinstance(content.get("richText"), list) else []
            text = "".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))
        else:
            if msgtype in IGNORED_MSGTYPES:
                logger.debug("dingtalk message type ignored: %s", msgtype)
            else:
                logger.info("dingtalk message type unsupported: %s", str(msgtype)[:50])
            return []
        is_group = str(body.get("conversationType")) == "2"
        if is_group and body.get("isInAtList") is False:
            return []  # a group message not addressed to the bot
        text = text.strip()  # group @-messages arrive with a leading space where the mention was
        if not text:
            return []
        user_id = str(body.get("senderStaffId") or body.get("senderId") or "")
        return [
            Inbound(
                message_id=msg_id,
                chat_id=str(body.get("conversationId") or user_id),
                user_id=user_id,
                user_name=str(body.get("senderNick") or ""),
                text=text,
                is_group=is_group,
                raw={k: v for k, v in body.items() if k != "sessionWebhook"},
                reply_context={
                    "session_webhook": str(body.get("sessionWebhook") or ""),
                    "session_webhook_expires": _int(body.get("sessionWebhookExpiredTime"), 0),
                    "robot_code": str(body.get("robotCode") or ""),
                },
            )
        ]

    def _claim_signature(self, request: RawRequest, channel: Any, msg_id: str) -> None:
        """A signature vouches for one message: the same ``sign`` with another msgId is a replay with
        a forged body. A redelivery of the same message passes (and is de-duplicated on msgId)."""
        key = f"parley:dingtalk:sign:{channel.pk}:{_digest(request.headers.get('sign', ''))}"
        if not cache.add(key, msg_id, timeout=2 * MAX_SKEW_MS // 1000 + 60) and cache.get(key) != msg_id:
            raise SignatureInvalid("signature reused for another message")

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        return JsonResponse({})

    # --- outbound ------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[dict]:
        """``{"title", "text"}`` Markdown messages of at most ~18 KB each."""
        text = render_dialect(markdown, MARKDOWN) or " "
        title = _title(plain_text(markdown))
        return [
            {"title": title, "text": piece}
            for piece in split_text(text, CONTENT_LIMIT, measure=lambda s: len(s.encode()))
        ]

    def session_webhook_allowed(self, channel: Any, url: str) -> bool:
        """Whether ``url`` may be followed: https on DingTalk's own host, or the channel's api_base host."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        if parts.scheme == "https" and parts.hostname in DINGTALK_HOSTS and parts.port in (None, 443):
            return True
        if channel.api_base:
            base = urlsplit(channel.api_base)
            return bool(base.netloc) and (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        return False

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        messages = self.render(reply.markdown)
        ctx = target.reply_context or {}
        webhook = str(ctx.get("session_webhook") or "")
        expires = _int(ctx.get("session_webhook_expires"), 0)
        use_webhook = (
            webhook
            and expires > time.time() * 1000 + SESSION_MARGIN_MS
            and self.session_webhook_allowed(channel, webhook)
        )
        if webhook and not use_webhook:
            logger.info("dingtalk session webhook not used (expired or foreign host); robot API instead")
        sent: SentRef | None = None
        for message in messages:
            ref = self._send_session(webhook, message) if use_webhook else self._send_robot(channel, target, message)
            sent = sent or ref
        assert sent is not None
        return sent

    # -- streaming: an AI card, its content streamed (``streaming.py``) -----------------------------
    # Only for channels with a ``card_template_id`` credential: an AI card template made in
    # DingTalk's card platform, whose Markdown variable is ``card_content_key`` ("content" unless
    # set). The card instance is created and delivered (``POST /v1.0/card/instances`` and
    # ``…/deliver``), its content written with ``PUT /v1.0/card/streaming`` (whole text each time,
    # ``isFinalize`` on the last), and its state set to finished or failed (``PUT
    # /v1.0/card/instances``, ``flowStatus``), as DingTalk's own Stream SDK does.

    def stream_interval(self, channel: Any, target: Target) -> float | None:
        return STREAM_INTERVAL if (channel.credentials or {}).get("card_template_id") else None

    def stream_start(self, channel: Any, target: Target, markdown: str) -> str:
        creds = channel.credentials or {}
        track = uuid.uuid4().hex
        key = _card_key(channel)
        self._card_call(
            channel,
            "POST",
            "/v1.0/card/instances",
            {
                "cardTemplateId": str(creds.get("card_template_id")),
                "outTrackId": track,
                "cardData": {"cardParamMap": {"flowStatus": CARD_PROCESSING, key: ""}},
                "imGroupOpenSpaceModel": {"supportForward": True},
                "imRobotOpenSpaceModel": {"supportForward": True},
            },
        )
        deliver: dict[str, Any] = {"outTrackId": track, "userIdType": 1}
        if target.is_group:
            deliver["openSpaceId"] = f"dtv1.card//IM_GROUP.{target.chat_id}"
            deliver["imGroupOpenDeliverModel"] = {"robotCode": self._robot_code(channel, target)}
        else:
            deliver["openSpaceId"] = f"dtv1.card//IM_ROBOT.{target.user_id or target.chat_id}"
            deliver["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT"}
        self._card_call(channel, "POST", "/v1.0/card/instances/deliver", deliver)
        self.stream_update(channel, target, track, markdown)
        return track

    def stream_update(self, channel: Any, target: Target, handle: str, markdown: str) -> None:
        # While it grows, only the first part is shown; ``stream_finish`` sends the rest.
        self._card_stream(channel, handle, self.render(markdown)[0]["text"], final=False)

    def stream_finish(self, channel: Any, target: Target, handle: str, reply: OutboundReply) -> SentRef:
        """The card's content becomes the answer's first part and the card is finished; the other
        parts follow as robot messages."""
        parts = self.render(reply.markdown)
        self._card_stream(channel, handle, parts[0]["text"], final=True)
        params = {"flowStatus": CARD_FINISHED, _card_key(channel): parts[0]["text"]}
        data = self._card_call(
            channel, "PUT", "/v1.0/card/instances", {"outTrackId": handle, "cardData": {"cardParamMap": params}}
        )
        for part in parts[1:]:
            self._send_robot(channel, target, part)
        return SentRef(platform_message_id=handle, raw=data)

    def stream_abandon(self, channel: Any, target: Target, handle: str) -> None:
        # A delivered card cannot be taken back: it is closed as failed (the template's failed state).
        params = {"flowStatus": CARD_FAILED}
        self._card_call(
            channel, "PUT", "/v1.0/card/instances", {"outTrackId": handle, "cardData": {"cardParamMap": params}}
        )

    def _card_stream(self, channel: Any, track: str, text: str, *, final: bool) -> None:
        body = {
            "outTrackId": track,
            "guid": uuid.uuid4().hex,
            "key": _card_key(channel),
            "content": text,
            "isFull": True,
            "isFinalize": final,
            "isError": False,
        }
        self._card_call(channel, "PUT", "/v1.0/card/streaming", body)

    def _card_call(self, channel: Any, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):
            token = self.access_token(channel)
            status, data = http.request(
                "DingTalk",
                method,
                f"{self.api_base(channel)}{path}",
                what=f"card {path.rsplit('/', 1)[-1]}",
                json=body,
                headers={"x-acs-dingtalk-access-token": token},
            )
            if status == 200 and data.get("success", True) is not False:
                return data
            if (status == 401 or data.get("code") in TOKEN_INVALID_CODES) and attempt == 1:
                TOKENS.forget(channel, self._token_identity(channel))
                continue
            raise _error(status, data, what=f"card {path.rsplit('/', 1)[-1]}")
        raise PlatformError("dingtalk: token rejected twice")  # pragma: no cover

    def _robot_code(self, channel: Any, target: Target) -> str:
        creds = channel.credentials or {}
        return str(creds.get("robot_code") or target.reply_context.get("robot_code") or creds.get("client_id"))

    def send_test_message(self, channel: Any, target: Target) -> SentRef:
        """Sends a test message through the robot API; ``SentRef.raw`` is DingTalk's answer."""
        return self.send(channel, target, OutboundReply(markdown="**Parley** test message ✅"))

    def _send_session(self, url: str, message: dict) -> SentRef:
        status, data = http.request("DingTalk", "POST", url, json={"msgtype": "markdown", "markdown": message})
        if status == 200 and data.get("errcode", 0) == 0:
            return SentRef(raw=data)
        raise _error(status, data, what="session webhook send")

    def _send_robot(self, channel: Any, target: Target, message: dict) -> SentRef:
        creds = channel.credentials or {}
        robot_code = str(creds.get("robot_code") or target.reply_context.get("robot_code") or creds.get("client_id"))
        body: dict[str, Any] = {
            "robotCode": robot_code,
            "msgKey": "sampleMarkdown",
            "msgParam": json.dumps(message, ensure_ascii=False),
        }
        if target.is_group:
            path, body["openConversationId"] = "/v1.0/robot/groupMessages/send", target.chat_id
        else:
            path, body["userIds"] = "/v1.0/robot/oToMessages/batchSend", [target.user_id or target.chat_id]
        for attempt in (1, 2):
            token = self.access_token(channel)
            status, data = http.request(
                "DingTalk",
                "POST",
                f"{self.api_base(channel)}{path}",
                json=body,
                headers={"x-acs-dingtalk-access-token": token},
            )
            if status == 200 and data.get("processQueryKey"):
                if data.get("invalidStaffIdList"):
                    raise PlatformError("dingtalk send: user not reachable by the robot", permanent=True)
                return SentRef(platform_message_id=str(data["processQueryKey"]), raw=data)
            if (status == 401 or data.get("code") in TOKEN_INVALID_CODES) and attempt == 1:
                TOKENS.forget(channel, self._token_identity(channel))
                continue
            raise _error(status, data, what="robot send")
        raise PlatformError("dingtalk: token rejected twice")  # pragma: no cover

    def _token_identity(self, channel: Any) -> tuple[str, ...]:
        creds = channel.credentials or {}
        return (self.api_base(channel), str(creds.get("client_id")), str(creds.get("client_secret")))

    def _token_key(self, channel: Any) -> str:
        return TOKENS.key(channel, *self._token_identity(channel))

    def access_token(self, channel: Any) -> str:
        """The app's access token, cached until ~5 min before it expires. Raises ``PlatformError``."""
        return TOKENS.get(channel, self._token_identity(channel), lambda: self._fetch_token(channel))

    def _fetch_token(self, channel: Any) -> tuple[str, int]:
        creds = channel.credentials or {}
        status, data = http.request(
            "DingTalk",
            "POST",
            f"{self.api_base(channel)}/v1.0/oauth2/accessToken",
            json={"appKey": creds.get("client_id", ""), "appSecret": creds.get("client_secret", "")},
        )
        token = data.get("accessToken")
        if status != 200 or not isinstance(token, str) or not token:
            raise _error(status, data, what="access token")
        expires = _int(data.get("expireIn"), 7200)
        return token, expires


def _card_key(channel: Any) -> str:
    """The AI card template's Markdown variable that carries the answer."""
    return str((channel.credentials or {}).get("card_content_key") or "content")


def _title(text: str, limit: int = 30) -> str:
    """The notification title: the answer's first line, cut at a word boundary."""
    line = text.split("\n", 1)[0].strip() or "Reply"
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:，。；：") + "…"


_int = as_int


def _error(status: int, data: dict, *, what: str) -> PlatformError:
    code = data.get("code") or data.get("errcode")
    msg = str(data.get("message") or data.get("errmsg") or "")[:300]
    transient = status >= 500 or status == 429 or code in (-1, 130101, "Throttling", "ServiceUnavailable")
    return PlatformError(
        f"dingtalk {what} failed: HTTP {status} code {code} {msg}".strip(), permanent=not transient, status=status
    )
