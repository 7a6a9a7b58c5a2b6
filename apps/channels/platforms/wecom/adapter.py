"""WeCom (企业微信) self-built app callbacks.

Inbound: the GET ``echostr`` URL verification; POSTed callbacks (XML, or JSON in JSON mode) signed
with ``msg_signature`` and AES-encrypted (see ``crypto.py``); text messages, de-duplicated on
``MsgId``. WeCom publishes no replay window, so a replayed callback is caught by that id.

Outbound: an access token (``gettoken``, cached per channel in the Django cache until shortly before
it expires, refreshed on 40014/42001) and ``message/send`` with the ``markdown`` type, split at the
2048-byte limit.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from django.http import HttpResponse

from apps.channels.markdown import Dialect, render_dialect, split_text

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
)
from . import crypto

logger = logging.getLogger(__name__)
TOKENS = AccessTokenCache("wecom")

TOKEN_INVALID_CODES = frozenset({40014, 42001, 41001})
TRANSIENT_CODES = frozenset({-1, 45009, 45033, 45011})
#: Bytes per message (text and markdown content).
CONTENT_LIMIT = 2048
#: Events a WeCom app receives that Parley has nothing to do with (answered "success", not stored).
IGNORED_EVENTS = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "enter_agent",
        "location",
        "click",
        "view",
        "view_miniprogram",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "batch_job_result",
        "change_contact",
        "change_external_contact",
        "template_card_event",
    }
)
MARKDOWN = Dialect(italic="", strike="", code_blocks=False, tables=False, hr="———")


def _parse_xml(data: bytes | str) -> dict[str, str]:
    """Top-level child elements of an ``<xml>`` document as text (defusedxml: no DTD or entity
    tricks). Raises ``MalformedRequest``."""
    try:
        root = fromstring(data.encode() if isinstance(data, str) else data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedRequest("body is not acceptable XML") from exc
    return {child.tag: (child.text or "") for child in root}


class WeComAdapter(PlatformAdapter):
    platform = "wecom"
    default_api_base = "https://qyapi.weixin.qq.com"
    credential_keys = ("corp_id", "agent_id", "secret", "token", "encoding_aes_key")
    required_credentials = credential_keys

    # --- inbound -------------------------------------------------------------------------------

    def _decrypt(self, channel: Any, signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        creds = channel.credentials or {}
        if not (signature and timestamp and nonce):
            raise SignatureInvalid("msg_signature, timestamp or nonce missing")
        if not crypto.signature_matches(signature, str(creds.get("token") or ""), timestamp, nonce, encrypt):
            raise SignatureInvalid()
        try:
            return crypto.decrypt(encrypt, str(creds.get("encoding_aes_key") or ""), str(creds.get("corp_id") or ""))
        except crypto.ReceiveIdMismatch as exc:
            raise WebhookRejected(403, str(exc), outcome="rejected_signature") from exc
        except crypto.DecryptError as exc:
            raise SignatureInvalid(str(exc)) from exc

    def handshake(self, request: RawRequest, channel: Any) -> HttpResponse | None:
        if request.method != "GET":
            return None
        q = request.query
        echostr = q.get("echostr", "")
        if not echostr:
            raise MalformedRequest("echostr missing")
        # Base64 has no spaces: a '+' that arrived un-encoded was turned into one by query decoding.
        echostr = echostr.replace(" ", "+")
        plain = self._decrypt(channel, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""), echostr)
        # The bare plaintext: no quotes, BOM or newline.
        return HttpResponse(plain.encode(), content_type="text/plain; charset=utf-8")

    def verify(self, request: RawRequest, channel: Any) -> None:
        body = request.body
        if body.lstrip()[:1] == b"{":
            try:
                envelope = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise MalformedRequest("body is not JSON") from exc
            encrypt = envelope.get("encrypt") if isinstance(envelope, dict) else None
            json_mode = True
        else:
            encrypt = _parse_xml(body).get("Encrypt")
            json_mode = False
        if not isinstance(encrypt, str) or not encrypt:
            raise MalformedRequest("Encrypt missing")
        q = request.query
        plain = self._decrypt(channel, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", ""), encrypt)
        request.state["wecom"] = (plain, json_mode)

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        plain, json_mode = request.state["wecom"]
        if json_mode:
            try:
                msg = json.loads(plain)
            except ValueError as exc:
                raise MalformedRequest("decrypted message is not JSON") from exc
            if not isinstance(msg, dict):
                raise MalformedRequest("decrypted message is not a JSON object")
            fields = {k: "" if v is None else str(v) for k, v in msg.items() if not isinstance(v, (dict, list))}
        else:
            fields = _parse_xml(plain)
        msg_type = fields.get("MsgType", "")
        if msg_type == "event":
            event = fields.get("Event", "")
            if event.lower() in IGNORED_EVENTS:
                logger.debug("wecom event ignored: %s", event)
            else:
                logger.info("wecom event unsupported: %s", event[:100])
            return []
        if msg_type != "text":
            logger.info("wecom message type unsupported: %s", msg_type[:50])
            return []
        user = fields.get("FromUserName", "")
        text = fields.get("Content", "").strip()
        if not user or not text:
            return []
        # Events carry no MsgId; the documented fallback key is sender + CreateTime.
        message_id = fields.get("MsgId") or f"{user}:{fields.get('CreateTime', '')}"
        return [
            Inbound(
                message_id=message_id,
                chat_id=user,
                user_id=user,
                text=text,
                raw=fields,
                reply_context={"agent_id": fields.get("AgentID", "")},
            )
        ]

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        # "success" (or an empty body): received, no passive reply; the answer goes out via message/send.
        return HttpResponse(b"success", content_type="text/plain")

    # --- outbound ------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[str]:
        """WeCom markdown pieces of at most 2048 UTF-8 bytes each."""
        text = render_dialect(markdown, MARKDOWN) or " "
        return split_text(text, CONTENT_LIMIT, measure=lambda s: len(s.encode()))

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        creds = channel.credentials or {}
        agent_id = str(creds.get("agent_id") or target.reply_context.get("agent_id") or "")
        sent: SentRef | None = None
        for piece in self.render(reply.markdown):
            body = {
                "touser": target.user_id or target.chat_id,
                "msgtype": "markdown",
                "agentid": int(agent_id) if agent_id.isdigit() else agent_id,
                "markdown": {"content": piece},
            }
            data = self._api(channel, "/cgi-bin/message/send", body)
            sent = sent or SentRef(platform_message_id=str(data.get("msgid") or ""), raw=data)
        assert sent is not None
        return sent

    def send_test_message(self, channel: Any, target: Target) -> SentRef:
        """Sends a test message; ``SentRef.raw`` is WeCom's answer. Raises ``PlatformError`` with its errmsg."""
        return self.send(channel, target, OutboundReply(markdown="**Parley** test message ✅"))

    def _api(self, channel: Any, path: str, body: dict) -> dict:
        for attempt in (1, 2):
            token = self.access_token(channel)
            status, data = http.request(
                "WeCom", "POST", f"{self.api_base(channel)}{path}", params={"access_token": token}, json=body
            )
            code = data.get("errcode")
            if status == 200 and code == 0:
                if data.get("invaliduser"):
                    raise PlatformError(f"wecom send: invalid user {str(data['invaliduser'])[:100]}", permanent=True)
                return data
            if code in TOKEN_INVALID_CODES and attempt == 1:
                TOKENS.forget(channel, self._token_identity(channel))
                continue
            raise _error(status, data)
        raise PlatformError("wecom: token rejected twice")  # pragma: no cover

    def _token_identity(self, channel: Any) -> tuple[str, ...]:
        creds = channel.credentials or {}
        return (self.api_base(channel), str(creds.get("corp_id")), str(creds.get("secret")))

    def _token_key(self, channel: Any) -> str:
        return TOKENS.key(channel, *self._token_identity(channel))

    def access_token(self, channel: Any) -> str:
        """The channel's access token, cached until ~5 min before it expires (``gettoken`` is rate
        limited). Raises ``PlatformError`` (permanent for rejected credentials)."""
        return TOKENS.get(channel, self._token_identity(channel), lambda: self._fetch_token(channel))

    def _fetch_token(self, channel: Any) -> tuple[str, int]:
        creds = channel.credentials or {}
        status, data = http.request(
            "WeCom",
            "GET",
            f"{self.api_base(channel)}/cgi-bin/gettoken",
            params={"corpid": creds.get("corp_id", ""), "corpsecret": creds.get("secret", "")},
        )
        token = data.get("access_token")
        if status != 200 or data.get("errcode", 0) != 0 or not isinstance(token, str) or not token:
            raise _error(status, data, what="gettoken")
        try:
            expires = int(data.get("expires_in") or 7200)
        except (TypeError, ValueError):
            expires = 7200
        return token, expires


def _error(status: int, data: dict, *, what: str = "send") -> PlatformError:
    code = data.get("errcode")
    msg = str(data.get("errmsg") or "")[:300]
    transient = status >= 500 or status == 429 or code in TRANSIENT_CODES
    return PlatformError(
        f"wecom {what} failed: HTTP {status} errcode {code} {msg}".strip(), permanent=not transient, status=status
    )
