"""Feishu / Lark: event subscription v2.0 over HTTP ("send events to developer server").

Inbound: the URL-verification challenge, the Verification Token, the Encrypt Key cipher and the
``X-Lark-Signature`` header; ``im.message.receive_v1`` text and rich-text ("post") messages, in
groups only when the bot is @-mentioned (the mention is removed). De-duplicated on ``header.event_id``.

Outbound: a tenant access token (cached per channel in the Django cache until shortly before it
expires, refreshed on the token-expired codes) and the messages API; Markdown goes out as an
interactive card with a ``markdown`` element. Lark (international) is the same API on another host:
set the channel's ``api_base`` to ``https://open.larksuite.com``.

Rating buttons: an answer that can be rated carries 👍 / 👎 buttons (labels in the answer's
language) whose ``value`` holds the answer's signed feedback token. A click arrives as a
``card.action.trigger`` callback (schema 2.0) on the same URL, verified and decrypted like any
event, and is answered with a toast within Feishu's 3-second limit.

Tokens and sends use httpx directly rather than lark-oapi: the SDK binds one domain per client and
keeps its token cache in process memory, while Parley needs a per-channel API base and a token
shared by every worker through the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import Any

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse

from apps.channels.markdown import Dialect, render_dialect, split_text
from apps.core.language import detect_language

from .. import http
from ..base import (
    AccessTokenCache,
    Inbound,
    MalformedRequest,
    OutboundReply,
    PlatformAdapter,
    PlatformError,
    RatingClick,
    RatingOutcome,
    RawRequest,
    SentRef,
    SignatureInvalid,
    Target,
    WebhookRejected,
    as_int,
    rating_buttons_enabled,
    rating_text,
)
from . import crypto

logger = logging.getLogger(__name__)
TOKENS = AccessTokenCache("feishu")

#: Codes meaning "this tenant access token is invalid or expired": drop it, fetch a new one, retry once.
TOKEN_INVALID_CODES = frozenset({99991661, 99991663, 99991668, 99991671})
#: Codes a later retry can fix (rate limits, internal errors).
TRANSIENT_CODES = frozenset({99991400, 99991401, 1000004, 1000005, 230020})
#: Events Parley receives but has nothing to do with (answered 200, not stored).
IGNORED_EVENTS = frozenset(
    {
        "im.message.message_read_v1",
        "im.message.recalled_v1",
        "im.message.reaction.created_v1",
        "im.message.reaction.deleted_v1",
        "im.chat.member.bot.added_v1",
        "im.chat.member.bot.deleted_v1",
        "im.chat.member.user.added_v1",
        "im.chat.member.user.deleted_v1",
        "im.chat.member.user.withdrawn_v1",
        "im.chat.updated_v1",
        "im.chat.disbanded_v1",
        "im.chat.access_event.bot_p2p_chat_entered_v1",
        "application.bot.menu_v6",
        "p2p_chat_create",
        "add_bot",
        "remove_bot",
    }
)
#: The callback of a click on a card button (schema 2.0).
CARD_ACTION_EVENT = "card.action.trigger"
#: The key of a rating button's ``value`` that holds its thumb ("up" / "down").
RATING_VALUE_KEY = "parley_rating"
#: Card JSON above this many bytes is split into several cards (the API's limit is 30 KB).
CARD_TEXT_LIMIT = 24_000
#: Seconds between updates of a streamed answer's card (Feishu allows 5 updates a second per message).
STREAM_INTERVAL = 0.5
_PLACEHOLDER = re.compile(r"@_user_\d+")


def _escape(text: str) -> str:
    # Card markdown interprets <at>, <font> and friends; model text must stay text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CARD_DIALECT = Dialect(headings=False, tables=False, hr="———", escape=_escape)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class FeishuAdapter(PlatformAdapter):
    platform = "feishu"
    default_api_base = "https://open.feishu.cn"
    credential_keys = ("app_id", "app_secret", "verification_token", "encrypt_key", "rating_buttons")
    required_credentials = ("app_id", "app_secret", "verification_token")

    # --- inbound -------------------------------------------------------------------------------

    def _payload(self, request: RawRequest, channel: Any) -> dict:
        """The event as a dict, decrypted when it arrived encrypted (parsed once per request)."""
        cached = getattr(request, "_parley_feishu_payload", None)
        if cached is not None:
            return cached
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedRequest("body is not JSON") from exc
        if not isinstance(payload, dict):
            raise MalformedRequest("body is not a JSON object")
        if "encrypt" in payload:
            key = (channel.credentials or {}).get("encrypt_key") or ""
            if not key:
                raise MalformedRequest("encrypted event, but the channel has no Encrypt Key")
            if not isinstance(payload["encrypt"], str):
                raise MalformedRequest("encrypt is not a string")
            try:
                payload = json.loads(crypto.decrypt(payload["encrypt"], key))
            except crypto.DecryptError as exc:
                raise SignatureInvalid(f"cannot decrypt event: {exc}") from exc
            except ValueError as exc:
                raise MalformedRequest("decrypted event is not JSON") from exc
            if not isinstance(payload, dict):
                raise MalformedRequest("decrypted event is not a JSON object")
        request._parley_feishu_payload = payload
        return payload

    def _check_token(self, given: Any, channel: Any) -> None:
        expected = str((channel.credentials or {}).get("verification_token") or "")
        if not expected or not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected(403, "verification token mismatch", outcome="rejected_signature")

    def handshake(self, request: RawRequest, channel: Any) -> HttpResponse | None:
        if request.method != "POST":
            raise WebhookRejected(405, "Feishu events are POSTed")
        payload = self._payload(request, channel)
        if payload.get("type") != "url_verification":
            return None
        # Like the SDK: the challenge is authenticated by its token, not by the signature header.
        self._check_token(payload.get("token"), channel)
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise MalformedRequest("challenge missing")
        return JsonResponse({"challenge": challenge})

    def verify(self, request: RawRequest, channel: Any) -> None:
        creds = channel.credentials or {}
        key = creds.get("encrypt_key") or ""
        if key:
            ts = request.headers.get("X-Lark-Request-Timestamp", "")
            nonce = request.headers.get("X-Lark-Request-Nonce", "")
            sig = request.headers.get("X-Lark-Signature", "")
            if not (ts and nonce and sig):
                raise SignatureInvalid("signature headers missing")
            if not crypto.signature_matches(sig, ts, nonce, key, request.body):
                raise SignatureInvalid()
        payload = self._payload(request, channel)
        header = payload.get("header") if payload.get("schema") == "2.0" else None
        token = header.get("token") if isinstance(header, dict) else payload.get("token")
        self._check_token(token, channel)
        app_id = header.get("app_id") if isinstance(header, dict) else None
        if app_id and creds.get("app_id") and app_id != creds["app_id"]:
            raise WebhookRejected(403, "event is for another app", outcome="rejected_signature")

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        payload = self._payload(request, channel)
        header = payload.get("header")
        if payload.get("schema") != "2.0" or not isinstance(header, dict):
            event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
            event_type = str(event.get("type") or payload.get("type") or "")
            self._skip(event_type, "v1 event")
            return []
        event_type = str(header.get("event_type") or "")
        if event_type != "im.message.receive_v1":
            self._skip(event_type, "event")
            return []
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("message"), dict):
            raise MalformedRequest("message event without a message")
        return self._message(channel, header, event)

    def _skip(self, event_type: str, what: str) -> None:
        if event_type in IGNORED_EVENTS:
            logger.debug("feishu %s ignored: %s", what, event_type)
        else:
            logger.info("feishu %s unsupported: %s", what, event_type[:100])

    def _message(self, channel: Any, header: dict, event: dict) -> list[Inbound]:
        message = event["message"]
        sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
        if sender.get("sender_type") not in (None, "user"):
            return []  # other apps and bots: never answer a bot
        msg_type = message.get("message_type")
        try:
            content = json.loads(message.get("content") or "{}")
        except (TypeError, ValueError) as exc:
            raise MalformedRequest("message content is not JSON") from exc
        if not isinstance(content, dict):
            raise MalformedRequest("message content is not a JSON object")
        if msg_type == "text":
            text = str(content.get("text") or "")
        elif msg_type == "post":
            text = _post_text(content)
        else:
            logger.info("feishu message type unsupported: %s", str(msg_type)[:50])
            return []
        mentions = [m for m in message.get("mentions") or [] if isinstance(m, dict)]
        is_group = message.get("chat_type") not in ("p2p", None)
        bot_id = cache.get(self._bot_key(channel)) or None
        bot_keys = _bot_mention_keys(mentions, bot_id)
        if is_group and not bot_keys:
            return []  # a group message not addressed to the bot
        text = _replace_mentions(text, mentions, bot_keys).strip()
        if not text:
            return []
        sender_id = sender.get("sender_id") if isinstance(sender.get("sender_id"), dict) else {}
        event_id = str(header.get("event_id") or message.get("message_id") or "")
        if not event_id:
            raise MalformedRequest("event without an id")
        return [
            Inbound(
                message_id=event_id,
                chat_id=str(message.get("chat_id") or ""),
                user_id=str(sender_id.get("open_id") or sender_id.get("user_id") or ""),
                text=text,
                is_group=is_group,
                raw={"header": {k: v for k, v in header.items() if k != "token"}, "event": event},
                reply_context={"message_id": str(message.get("message_id") or ""), "msg_type": msg_type},
            )
        ]

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        return JsonResponse({"code": 0})

    def rating_click(self, request: RawRequest, channel: Any) -> RatingClick | None:
        """A click on a rating button (``card.action.trigger`` whose ``action.value`` carries
        ``parley_rating``); None for every other event, card actions of other buttons included."""
        payload = self._payload(request, channel)
        header = payload.get("header")
        if payload.get("schema") != "2.0" or not isinstance(header, dict):
            return None
        if header.get("event_type") != CARD_ACTION_EVENT:
            return None
        event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
        action = event.get("action") if isinstance(event.get("action"), dict) else {}
        value = action.get("value")
        if isinstance(value, str):  # some clients deliver the value as a JSON string
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, dict) or RATING_VALUE_KEY not in value:
            return None
        thumb, token = value.get(RATING_VALUE_KEY), value.get("token")
        if not isinstance(thumb, str) or not isinstance(token, str) or not token:
            raise MalformedRequest("rating button value without a thumb and a token")
        operator = event.get("operator") if isinstance(event.get("operator"), dict) else {}
        ids = [operator.get(k) for k in ("open_id", "user_id", "union_id")]
        user_ids = tuple(i for i in ids if isinstance(i, str) and i)
        if not user_ids:
            raise MalformedRequest("card action without an operator")
        context = event.get("context") if isinstance(event.get("context"), dict) else {}
        return RatingClick(
            token=token[:500],
            thumb=thumb[:10],
            user_ids=user_ids,
            chat_id=str(context.get("open_chat_id") or ""),
            raw={
                "event_id": str(header.get("event_id") or ""),
                "message_id": str(context.get("open_message_id") or ""),
            },
        )

    def rating_response(
        self, request: RawRequest, channel: Any, click: RatingClick, outcome: RatingOutcome
    ) -> HttpResponse:
        """A toast in the clicker's client language (``i18n``; ``content`` in the answer's
        language). Refusals a real person can meet (another person's answer, an expired one, too
        many clicks) are answered 200 with an error toast, since Feishu shows only a generic
        failure for other statuses; a forged value gets its 4xx with the toast."""
        key = f"recorded_{outcome.thumb}" if outcome.ok else outcome.kind
        kind = "success" if outcome.ok else ("warning" if outcome.kind == "limited" else "error")
        toast = {
            "type": kind,
            "content": rating_text(outcome.language, key),
            "i18n": {"zh_cn": rating_text("zh", key), "en_us": rating_text("en", key)},
        }
        body: dict[str, Any] = {"toast": toast}
        if outcome.ok and outcome.answer:
            # Redraw the clicked card (the answer's last) with the chosen button highlighted. Cards
            # are per-viewer by default (no ``update_multi``), so only the clicker sees the change.
            card = self.render(outcome.answer)[-1]
            card["elements"] += self._rating_elements(click.token, detect_language(outcome.answer), outcome.thumb)
            body["card"] = {"type": "raw", "data": card}
        status = 200 if outcome.status < 400 or outcome.kind in ("expired", "not_yours", "limited") else outcome.status
        return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})

    # --- outbound ------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[dict]:
        """One or more interactive cards (JSON 1.0) carrying the answer as card markdown."""
        text = render_dialect(markdown, CARD_DIALECT) or " "
        pieces = split_text(text, CARD_TEXT_LIMIT, measure=lambda s: len(s.encode()))
        return [
            {"config": {"wide_screen_mode": True}, "elements": [{"tag": "markdown", "content": piece}]}
            for piece in pieces
        ]

    def card_actions(self, reply: OutboundReply, channel: Any = None) -> list[dict]:
        """Card elements appended to the last card of an answer: 👍 / 👎 buttons, labelled in the
        answer's language, for an answer that can be rated (``reply.feedback_url`` set) on a
        channel whose ``rating_buttons`` is not "off". Each button's ``value`` carries the thumb
        and the answer's signed feedback token."""
        token = reply.feedback_token
        if not token or (channel is not None and not rating_buttons_enabled(channel)):
            return []
        return self._rating_elements(token, detect_language(reply.markdown))

    def _rating_elements(self, token: str, language: str, chosen: str = "") -> list[dict]:
        """The ``action`` element of the 👍 / 👎 buttons; the ``chosen`` thumb's is ``primary``."""
        buttons = [
            {
                "tag": "button",
                "text": {"tag": "plain_text", "content": rating_text(language, thumb)},
                "type": "primary" if thumb == chosen else "default",
                "value": {RATING_VALUE_KEY: thumb, "token": token},
            }
            for thumb in ("up", "down")
        ]
        return [{"tag": "action", "actions": buttons}]

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        cards = self.render(reply.markdown)
        cards[-1]["elements"] += self.card_actions(reply, channel)
        sent: SentRef | None = None
        for i, card in enumerate(cards):
            # The API de-duplicates on uuid for about an hour: a retried task cannot double-post.
            ref = self._post_card(
                channel, target, card, f"{reply.idempotency_key}-{i}" if reply.idempotency_key else ""
            )
            sent = sent or ref
        self._remember_bot_id(channel)
        assert sent is not None
        return sent

    def _post_card(self, channel: Any, target: Target, card: dict, uuid: str) -> SentRef:
        """Send one card to ``target`` (as a reply to the question when it has a message id)."""
        base = self.api_base(channel)
        reply_to = str(target.reply_context.get("message_id") or "")
        body: dict[str, Any] = {"msg_type": "interactive", "content": json.dumps(card, ensure_ascii=False)}
        if uuid:
            body["uuid"] = uuid[:50]
        if reply_to:
            url, params = f"{base}/open-apis/im/v1/messages/{reply_to}/reply", None
        elif target.chat_id:
            url, params = f"{base}/open-apis/im/v1/messages", {"receive_id_type": "chat_id"}
            body["receive_id"] = target.chat_id
        else:
            url, params = f"{base}/open-apis/im/v1/messages", {"receive_id_type": "open_id"}
            body["receive_id"] = target.user_id
        data = self._api(channel, url, body, params)
        message = data.get("data") if isinstance(data.get("data"), dict) else {}
        return SentRef(platform_message_id=str(message.get("message_id") or ""), raw=data)

    # -- streaming: one card, updated as the answer grows (``streaming.py``) ------------------------
    # The card is a shared one (``update_multi``), which Feishu requires of a card updated by
    # ``PATCH /im/v1/messages/:message_id`` (at most 5 updates a second per message).

    def stream_interval(self, channel: Any, target: Target) -> float | None:
        return STREAM_INTERVAL

    def stream_start(self, channel: Any, target: Target, markdown: str) -> str:
        ref = self._post_card(channel, target, self._shared(self.render(markdown)[0]), "")
        if not ref.platform_message_id:
            raise PlatformError("feishu send: no message_id in the answer", permanent=True)
        return ref.platform_message_id

    def stream_update(self, channel: Any, target: Target, handle: str, markdown: str) -> None:
        # While it grows, only the first card is shown; ``stream_finish`` sends the rest.
        self._patch_card(channel, handle, self._shared(self.render(markdown)[0]))

    def stream_finish(self, channel: Any, target: Target, handle: str, reply: OutboundReply) -> SentRef:
        """The streamed card becomes the answer's first card (its buttons on the last card, as
        ``send`` puts them); the other cards follow as new messages."""
        cards = [self._shared(card) for card in self.render(reply.markdown)]
        cards[-1]["elements"] += self.card_actions(reply, channel)
        data = self._patch_card(channel, handle, cards[0])
        for i, card in enumerate(cards[1:], start=1):
            self._post_card(channel, target, card, f"{reply.idempotency_key}-{i}" if reply.idempotency_key else "")
        self._remember_bot_id(channel)
        return SentRef(platform_message_id=handle, raw=data)

    def stream_abandon(self, channel: Any, target: Target, handle: str) -> None:
        self._api(channel, f"{self.api_base(channel)}/open-apis/im/v1/messages/{handle}", {}, None, method="DELETE")

    def _patch_card(self, channel: Any, message_id: str, card: dict) -> dict:
        url = f"{self.api_base(channel)}/open-apis/im/v1/messages/{message_id}"
        return self._api(channel, url, {"content": json.dumps(card, ensure_ascii=False)}, None, method="PATCH")

    @staticmethod
    def _shared(card: dict) -> dict:
        return {**card, "config": {**card.get("config", {}), "update_multi": True}}

    def send_test_message(self, channel: Any, target: Target) -> SentRef:
        """Sends a test card; ``SentRef.raw`` is Feishu's answer. Raises ``PlatformError`` with its message."""
        return self.send(channel, target, OutboundReply(markdown="**Parley** test message ✅"))

    def _api(self, channel: Any, url: str, body: dict, params: dict | None, *, method: str = "POST") -> dict:
        for attempt in (1, 2):
            token = self.tenant_token(channel)
            status, data = http.request(
                "Feishu", method, url, json=body, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            code = data.get("code")
            if status == 200 and code == 0:
                return data
            if code in TOKEN_INVALID_CODES and attempt == 1:
                TOKENS.forget(channel, self._token_identity(channel))
                continue
            raise _error(status, data)
        raise PlatformError("feishu: token rejected twice", permanent=False)  # pragma: no cover

    def _token_identity(self, channel: Any) -> tuple[str, ...]:
        creds = channel.credentials or {}
        return (self.api_base(channel), str(creds.get("app_id")), str(creds.get("app_secret")))

    def _token_key(self, channel: Any) -> str:
        return TOKENS.key(channel, *self._token_identity(channel))

    def _bot_key(self, channel: Any) -> str:
        creds = channel.credentials or {}
        return f"parley:feishu:bot-open-id:{channel.pk}:{_digest(self.api_base(channel), str(creds.get('app_id')))}"

    def tenant_token(self, channel: Any) -> str:
        """The channel's tenant access token, from the cache or fetched (and cached until ~5 min before
        it expires). Raises ``PlatformError`` (permanent for rejected credentials)."""
        return TOKENS.get(channel, self._token_identity(channel), lambda: self._fetch_token(channel))

    def _fetch_token(self, channel: Any) -> tuple[str, int]:
        creds = channel.credentials or {}
        status, data = http.request(
            "Feishu",
            "POST",
            f"{self.api_base(channel)}/open-apis/auth/v3/tenant_access_token/internal",
            json={"app_id": creds.get("app_id", ""), "app_secret": creds.get("app_secret", "")},
        )
        token = data.get("tenant_access_token")
        if status != 200 or data.get("code") != 0 or not isinstance(token, str) or not token:
            raise _error(status, data, what="tenant token")
        expire = _int(data.get("expire"), 7200)
        return token, expire

    def _remember_bot_id(self, channel: Any) -> None:
        """Learn the bot's open_id (after a send, off the webhook path) so group messages can be
        matched to the bot's own @-mention. Best effort."""
        key = self._bot_key(channel)
        if cache.get(key) or cache.get(f"{key}:miss"):
            return
        try:
            token = self.tenant_token(channel)
            status, data = http.request(
                "Feishu",
                "GET",
                f"{self.api_base(channel)}/open-apis/bot/v3/info",
                headers={"Authorization": f"Bearer {token}"},
            )
        except PlatformError:
            status, data = 0, {}
        bot = data.get("bot") if isinstance(data.get("bot"), dict) else {}
        if status == 200 and data.get("code") == 0 and bot.get("open_id"):
            cache.set(key, str(bot["open_id"]), timeout=7 * 24 * 3600)
        else:
            cache.set(f"{key}:miss", 1, timeout=3600)  # don't ask on every send


_int = as_int


def _error(status: int, data: dict, *, what: str = "send") -> PlatformError:
    code = data.get("code")
    msg = str(data.get("msg") or "")[:300]
    transient = status >= 500 or status == 429 or code in TRANSIENT_CODES
    return PlatformError(
        f"feishu {what} failed: HTTP {status} code {code} {msg}".strip(), permanent=not transient, status=status
    )


def _post_text(content: dict) -> str:
    """Plain text of a rich-text ("post") message; ``at`` elements keep their ``@_user_N`` placeholder."""
    if "content" not in content:
        # Some deliveries wrap the post per locale: {"zh_cn": {...}}.
        content = next((v for v in content.values() if isinstance(v, dict)), {})
    lines = []
    title = content.get("title")
    if isinstance(title, str) and title.strip():
        lines.append(title.strip())
    for paragraph in content.get("content") or []:
        if not isinstance(paragraph, list):
            continue
        parts = []
        for el in paragraph:
            if not isinstance(el, dict):
                continue
            tag = el.get("tag")
            if tag in ("text", "a", "md", "code_block"):
                parts.append(str(el.get("text") or ""))
            elif tag == "at":
                parts.append(str(el.get("user_id") or ""))
        lines.append("".join(parts))
    return "\n".join(lines)


def _bot_mention_keys(mentions: list[dict], bot_open_id: str | None) -> set[str]:
    """The ``@_user_N`` keys that mention the bot. Before the bot's open_id is known (it is learned
    on the first send), a group message only arrives when it @-mentions the bot, unless the app has
    the "read all group messages" scope, so every mention counts."""
    keys = set()
    for m in mentions:
        ident = m.get("id") if isinstance(m.get("id"), dict) else {}
        if bot_open_id is None or ident.get("open_id") == bot_open_id:
            keys.add(str(m.get("key") or ""))
    keys.discard("")
    return keys


def _replace_mentions(text: str, mentions: list[dict], bot_keys: set[str]) -> str:
    names = {str(m.get("key")): str(m.get("name") or "") for m in mentions}

    def sub(match: re.Match) -> str:
        key = match.group(0)
        if key in bot_keys:
            return ""
        return f"@{names[key]}" if names.get(key) else key

    return re.sub(r"[ \t]{2,}", " ", _PLACEHOLDER.sub(sub, text)) if mentions else text
