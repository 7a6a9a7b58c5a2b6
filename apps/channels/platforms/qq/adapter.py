"""QQ official bot (QQ机器人开放平台), webhook mode.

Inbound: QQ signs every callback with Ed25519 over ``X-Signature-Timestamp + raw body``; the key is
derived from the bot secret. The URL check (op 13) asks us to *sign* ``event_ts + plain_token``
with that same key, so it is answered only for values that cannot double as a dispatch body.
Dispatches (op 0) are acknowledged with ``{"op": 12, "d": 0}``. One-to-one messages
(``C2C_MESSAGE_CREATE``) and group @-messages (``GROUP_AT_MESSAGE_CREATE``) become ``Inbound``\\s,
de-duplicated on the message id ``d.id``.

Outbound: an access token from ``bots.qq.com`` (cached per channel until 60 s before it expires),
then a passive reply through the OpenAPI quoting the user's ``msg_id`` with a distinct ``msg_seq``.

A channel's ``api_base`` replaces both ``https://api.sgroup.qq.com`` and ``https://bots.qq.com``:
their paths (``/v2/…`` and ``/app/…``) do not overlap, so one fake server answers both in tests.

The signing is by hand on ``cryptography`` (no official Python SDK for the webhook mode): RFC 8032
keys from a seed, which is exactly how QQ derives the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse

from apps.channels.markdown import TreeRenderer

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
    storable_value,
)

logger = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_ACK = 12
OP_VALIDATION = 13

# op 13 is answered only for values shaped like QQ's own: a short token of letters, digits, "_" and
# "-", and an all-digit timestamp. Anything else could be a forged dispatch body we'd be signing.
PLAIN_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EVENT_TS_RE = re.compile(r"^[0-9]{1,20}$")
SIGNATURE_TS_RE = re.compile(r"^[0-9]{1,20}$")

MESSAGE_EVENTS = {"C2C_MESSAGE_CREATE", "GROUP_AT_MESSAGE_CREATE"}
# Events QQ sends to a webhook that Parley deliberately does not act on (acknowledged, not stored).
IGNORED_EVENTS = {
    "GROUP_ADD_ROBOT",
    "GROUP_DEL_ROBOT",
    "GROUP_MSG_REJECT",
    "GROUP_MSG_RECEIVE",
    "FRIEND_ADD",
    "FRIEND_DEL",
    "C2C_MSG_REJECT",
    "C2C_MSG_RECEIVE",
    "INTERACTION_CREATE",
    "AT_MESSAGE_CREATE",  # guild (频道) channels: not supported by Parley's QQ channel
    "DIRECT_MESSAGE_CREATE",
    "MESSAGE_CREATE",
    "READY",
    "RESUMED",
}
MENTION_RE = re.compile(r"^\s*(<@!?[A-Za-z0-9_-]+>\s*)+")

TOKEN_REFRESH_MARGIN_S = 60  # QQ hands out a new token in the last 60 s of the old one's life
TOKENS = AccessTokenCache("qq", margin=lambda expires: TOKEN_REFRESH_MARGIN_S)
MESSAGE_LIMIT = 2000  # characters per message; QQ publishes no figure, this stays well clear
MAX_MESSAGES = 5  # passive replies allowed per msg_id (QQ: about 5); the rest is cut
SEQ_TTL_S = 2 * 3600  # passive reply windows: ~60 min (C2C), ~5 min (group)
# "Message de-duplicated": the same msg_id + msg_seq was already sent, i.e. a resend after a
# timeout whose first attempt got through. [D: QQ error code list]
DUPLICATE_SEND_CODES = {40054005}


class QQText(TreeRenderer):
    """Plain text. Links keep their label only: QQ filters (and may refuse a message for) URLs
    whose domain is not registered for the bot, so they are not spelled out."""

    def link(self, href: str, inner: str) -> str:
        return inner or href

    def code_block(self, content: str, language: str) -> str:
        return content


def signing_key(bot_secret: str) -> Ed25519PrivateKey:
    """The bot's Ed25519 key: the secret repeated until it is at least 32 bytes, first 32 as seed."""
    seed = bot_secret.encode()
    if not seed:
        raise ValueError("empty bot secret")
    while len(seed) < 32:
        seed += seed
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


class QQAdapter(PlatformAdapter):
    platform = "qq"
    default_api_base = "https://api.sgroup.qq.com"
    token_api_base = "https://bots.qq.com"
    credential_keys = ("app_id", "app_secret")
    required_credentials = ("app_id", "app_secret")

    # -- inbound ----------------------------------------------------------------------------------

    def _key(self, channel: Any) -> Ed25519PrivateKey:
        secret = str((channel.credentials or {}).get("app_secret") or "")
        if not secret:
            raise WebhookRejected(403, "channel has no app_secret")
        return signing_key(secret)

    def _check_appid(self, request: RawRequest, channel: Any) -> None:
        # QQ names the bot it calls for; a callback for another bot is not ours, whatever it carries.
        sent = request.headers.get("X-Bot-Appid")
        app_id = str((channel.credentials or {}).get("app_id") or "")
        if sent is not None and app_id and sent != app_id:
            raise WebhookRejected(403, "X-Bot-Appid does not match the channel")

    def handshake(self, request: RawRequest, channel: Any) -> HttpResponse | None:
        """The op 13 URL check: returns ``{plain_token, signature}``, or None for other requests.
        Raises ``WebhookRejected`` (400) for values that do not look like QQ's."""
        if request.method != "POST":
            return None
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None  # not JSON: verify() and parse() reject it
        if not isinstance(payload, dict) or payload.get("op") != OP_VALIDATION:
            return None
        self._check_appid(request, channel)
        d = payload.get("d")
        plain_token = d.get("plain_token") if isinstance(d, dict) else None
        event_ts = d.get("event_ts") if isinstance(d, dict) else None
        if not (isinstance(plain_token, str) and PLAIN_TOKEN_RE.match(plain_token)):
            raise MalformedRequest("plain_token is not a QQ validation token")
        if not (isinstance(event_ts, str) and EVENT_TS_RE.match(event_ts)):
            raise MalformedRequest("event_ts is not a timestamp")
        signature = self._key(channel).sign((event_ts + plain_token).encode())
        return JsonResponse({"plain_token": plain_token, "signature": signature.hex()})

    def verify(self, request: RawRequest, channel: Any) -> None:
        """Raises ``SignatureInvalid`` (401) unless ``X-Signature-Ed25519`` signs timestamp + raw body.

        QQ publishes no timestamp window, so none is enforced (a late retry must still be
        accepted); a replayed dispatch repeats its message id and is dropped as a duplicate."""
        if request.method != "POST":
            raise WebhookRejected(405, "QQ callbacks are POST requests")
        self._check_appid(request, channel)
        signature_hex = request.headers.get("X-Signature-Ed25519", "")
        timestamp = request.headers.get("X-Signature-Timestamp", "")
        if not signature_hex or not timestamp:
            raise SignatureInvalid("missing X-Signature-Ed25519 / X-Signature-Timestamp")
        if not SIGNATURE_TS_RE.match(timestamp):
            raise SignatureInvalid("malformed X-Signature-Timestamp")
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise SignatureInvalid("malformed X-Signature-Ed25519")
        # A valid Ed25519 signature is 64 bytes and its S half is < 2^253 (top 3 bits clear).
        if len(signature) != 64 or signature[63] & 0xE0:
            raise SignatureInvalid("malformed X-Signature-Ed25519")
        try:
            self._key(channel).public_key().verify(signature, timestamp.encode() + request.body)
        except InvalidSignature:
            raise SignatureInvalid()

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        """Messages in a verified dispatch; [] for events on the ignore list or unsupported ones."""
        try:
            payload = storable_value(json.loads(request.body))
        except (ValueError, UnicodeDecodeError):
            raise MalformedRequest("body is not JSON")
        if not isinstance(payload, dict):
            raise MalformedRequest("body is not a JSON object")
        op = payload.get("op")
        if op != OP_DISPATCH:
            logger.info("qq callback op ignored", extra={"op": str(op)[:20]})
            return []
        event = str(payload.get("t") or "")
        if event in IGNORED_EVENTS:
            return []
        if event not in MESSAGE_EVENTS:
            logger.warning("unsupported qq event", extra={"event_type": event[:100]})
            return []
        d = payload.get("d")
        if not isinstance(d, dict) or not isinstance(d.get("author"), dict):
            raise MalformedRequest(f"{event} without d.author")
        message_id = d.get("id") or payload.get("id")
        if not isinstance(message_id, str) or not message_id:
            raise MalformedRequest(f"{event} without a message id")
        content = d.get("content")
        text = MENTION_RE.sub("", content).strip() if isinstance(content, str) else ""
        if not text:
            logger.info("qq message without text ignored", extra={"event_type": event})
            return []
        author = d["author"]
        if event == "GROUP_AT_MESSAGE_CREATE":
            chat_id, user_id = d.get("group_openid"), author.get("member_openid")
        else:
            chat_id = user_id = author.get("user_openid")
        if not (isinstance(chat_id, str) and chat_id and isinstance(user_id, str) and user_id):
            raise MalformedRequest(f"{event} without openids")
        is_group = event == "GROUP_AT_MESSAGE_CREATE"
        return [
            Inbound(
                message_id=message_id,
                chat_id=chat_id,
                user_id=user_id,
                text=text,
                is_group=is_group,
                raw=payload,
                reply_context={"msg_id": message_id, "event_id": str(payload.get("id") or "")},
            )
        ]

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        return JsonResponse({"op": OP_ACK, "d": 0})

    # -- outbound ---------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[str]:
        """Plain-text messages of at most ``MESSAGE_LIMIT`` characters, at most ``MAX_MESSAGES``."""
        chunks = QQText().render_chunks(markdown, MESSAGE_LIMIT)
        if len(chunks) > MAX_MESSAGES:
            chunks = chunks[:MAX_MESSAGES]
            chunks[-1] = chunks[-1][: MESSAGE_LIMIT - 1] + "…"
        return chunks

    def _token_base(self, channel: Any) -> str:
        return (channel.api_base or self.token_api_base).rstrip("/")

    def _token_identity(self, channel: Any) -> tuple[str, ...]:
        return (self._token_base(channel), str(channel.credentials.get("app_id") or ""))

    def access_token(self, channel: Any, *, refresh: bool = False) -> str:
        """The channel's OpenAPI access token, from the cache unless ``refresh`` or within 60 s of
        expiry. Raises ``PlatformError`` (permanent for refused credentials)."""
        return TOKENS.get(channel, self._token_identity(channel), lambda: self._fetch_token(channel), refresh=refresh)

    def _fetch_token(self, channel: Any) -> tuple[str, int]:
        creds = channel.credentials or {}
        if not creds.get("app_id") or not creds.get("app_secret"):
            raise PlatformError("QQ channel needs app_id and app_secret", permanent=True)
        data = self._post(
            f"{self._token_base(channel)}/app/getAppAccessToken",
            {"appId": str(creds["app_id"]), "clientSecret": str(creds["app_secret"])},
            what="getAppAccessToken",
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise PlatformError(f"QQ getAppAccessToken refused: {_describe(data)}", permanent=True)
        try:
            expires_in = int(data.get("expires_in") or 0)  # QQ sends it as a string
        except (TypeError, ValueError):
            expires_in = 0
        return token, expires_in

    def _next_seq(self, channel: Any, msg_id: str, slot: str) -> int:
        """A ``msg_seq`` for this reply to ``msg_id``: distinct per piece of text, the same again when
        the same piece is re-sent (so QQ itself drops a resend whose first attempt got through)."""
        digest = hashlib.sha256(msg_id.encode()).hexdigest()[:32]
        slot_key = f"parley:qq:seq:{channel.pk}:{digest}:{hashlib.sha256(slot.encode()).hexdigest()[:16]}"
        seq = cache.get(slot_key)
        if seq:
            return int(seq)
        counter = f"parley:qq:seqctr:{channel.pk}:{digest}"
        cache.add(counter, 0, timeout=SEQ_TTL_S)
        try:
            seq = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.set(counter, 1, timeout=SEQ_TTL_S)
            seq = 1
        cache.set(slot_key, seq, timeout=SEQ_TTL_S)
        return int(seq)

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """Post ``reply`` to the user (C2C) or group as plain text; a passive reply when the target
        carries the user's ``msg_id``. Returns the first message's id. Raises ``PlatformError``."""
        # No rating link: QQ refuses messages with URLs of domains not registered for the bot, and
        # a refused answer is worse than an answer without a link.
        markdown = reply.markdown
        kind = "groups" if target.is_group else "users"
        url = f"{self.api_base(channel)}/v2/{kind}/{quote(target.chat_id, safe='')}/messages"
        msg_id = str((target.reply_context or {}).get("msg_id") or "")
        first: SentRef | None = None
        for index, text in enumerate(self.render(markdown)):
            body: dict[str, Any] = {"content": text, "msg_type": 0}
            if msg_id:
                slot = f"{reply.idempotency_key or id(reply)}:{index}"
                body["msg_id"] = msg_id
                body["msg_seq"] = self._next_seq(channel, msg_id, slot)
            data = self._post_authorized(channel, url, body)
            ref = SentRef(platform_message_id=str(data.get("id") or ""), raw=data)
            first = first or ref
        return first or SentRef()

    def _post_authorized(self, channel: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self.access_token(channel)
        try:
            return self._post(url, body, what="send message", token=token)
        except _TokenRejected:
            pass
        # The cached token was revoked or superseded: fetch a fresh one and try once more.
        try:
            return self._post(url, body, what="send message", token=self.access_token(channel, refresh=True))
        except _TokenRejected as exc:
            raise PlatformError(f"{exc} (fresh token too)", permanent=True, status=exc.status)

    def _post(self, url: str, body: dict[str, Any], *, what: str, token: str = "") -> dict[str, Any]:
        headers = {"Authorization": f"QQBot {token}"} if token else {}
        status, data = http.request("QQ", "POST", url, what=what, json=body, headers=headers)
        if status == 401 and token:
            raise _TokenRejected(f"QQ {what}: token rejected", status=status)
        if status == 429 or status >= 500:
            raise PlatformError(f"QQ {what}: HTTP {status} {_describe(data)}", status=status)
        if status >= 400:
            if data.get("code") in DUPLICATE_SEND_CODES:
                logger.info("qq reported an already delivered piece", extra={"status": status})
                return data
            raise PlatformError(f"QQ {what}: HTTP {status} {_describe(data)}", permanent=True, status=status)
        return data


class _TokenRejected(PlatformError):
    pass


def _describe(data: dict[str, Any]) -> str:
    code = data.get("code", data.get("err_code", ""))
    message = str(data.get("message") or "")[:200]
    return f"code {code} {message}".strip()
