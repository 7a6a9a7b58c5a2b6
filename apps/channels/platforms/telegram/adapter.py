"""Telegram Bot API, webhook mode.

Inbound: Telegram signs nothing; the only proof is the ``secret_token`` given to ``setWebhook``,
echoed in ``X-Telegram-Bot-Api-Secret-Token`` and compared in constant time. Updates are
de-duplicated on ``update_id``.

Which messages are answered:
* private chats: every text message;
* groups and supergroups: only messages addressed to this bot — a command naming it
  (``/help@parley_bot``), a mention of it (``@parley_bot``), or a reply to one of its messages.
  A bare ``/help`` in a group is ignored: Telegram delivers it to every bot in the group, and
  several bots answering one command is worse than none. Mentions and ``/cmd@name`` need the
  channel's ``bot_username``; replies are recognised by the bot id in the token.
* everything else (edits, channel posts, member updates…) is acknowledged and ignored.

Outbound: ``sendMessage`` with ``parse_mode=HTML`` (see ``formatting.py``), split into messages
of at most 4,096 characters; in groups the first one replies to the question.

Rating buttons: the last message of an answer that can be rated carries an inline keyboard of
👍 / 👎 (labels in the answer's language) whose ``callback_data`` is the answer's signed feedback
token in a compact form (``rating.py``). A click arrives as a ``callback_query`` update on the same
URL, checked like any update, and is answered in the webhook response itself with an
``answerCallbackQuery`` method call (a short toast in the clicker's language: thanks, only the
asker may rate, expired…), always with 200: Telegram retries any other status, and the person
clicking would see a spinner instead of the reason. A recorded rating then redraws the keyboard
(``editMessageReplyMarkup``, off the request) with the chosen thumb marked; it stays changeable.
Long polling hands each ``callback_query`` to the same two hooks and makes the answer's call itself.

Plain httpx rather than python-telegram-bot: the adapter makes one synchronous call
(``sendMessage``) from a worker, while that library is asyncio-first, brings its own update
dispatcher and job machinery, and would need an event loop per send.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from typing import Any

from django.http import HttpResponse, JsonResponse

from apps.core.language import detect_language
from apps.core.threads import LazyPool

from .. import http
from ..base import (
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
    rating_buttons_enabled,
    rating_text,
    storable_value,
)
from .formatting import TelegramHTML, strip_tags, utf16_len
from .rating import click_from_data, rating_keyboard

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MESSAGE_LIMIT = 4096  # characters (UTF-16 units) after entity parsing; our HTML source is longer, so safe
GROUP_TYPES = {"group", "supergroup"}
#: Seconds between edits of a streamed answer: Telegram allows about one message a second in a
#: chat and twenty a minute in a group (edits count alike).
STREAM_INTERVAL = 1.0
STREAM_INTERVAL_GROUP = 3.0
#: The update kinds Parley asks for (``setWebhook`` and ``getUpdates``): messages, and clicks on
#: its rating buttons.
ALLOWED_UPDATES = ["message", "callback_query"]
#: Keyboard redraws after a click run here, off the request (at most this many at once per process).
_FOLLOW_UPS = LazyPool("parley-telegram-rating", lambda: 2)
# Update kinds Parley does not act on: acknowledged and not stored.
IGNORED_UPDATES = {
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
}


class TelegramAdapter(PlatformAdapter):
    platform = "telegram"
    default_api_base = "https://api.telegram.org"
    credential_keys = ("bot_token", "secret_token", "bot_username", "rating_buttons")
    required_credentials = ("bot_token", "secret_token")

    # -- inbound ----------------------------------------------------------------------------------

    def verify(self, request: RawRequest, channel: Any) -> None:
        """Raises ``SignatureInvalid`` (401) unless the secret token header matches the channel's."""
        if request.method != "POST":
            raise WebhookRejected(405, "Telegram updates are POST requests")
        expected = str((channel.credentials or {}).get("secret_token") or "")
        if not expected:
            # Without a secret anyone who learns the URL could post updates: refuse them all.
            raise WebhookRejected(403, "channel has no secret_token")
        sent = request.headers.get(SECRET_HEADER)
        if sent is None:
            raise SignatureInvalid(f"missing {SECRET_HEADER}")
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise SignatureInvalid(f"wrong {SECRET_HEADER}")

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        """The message of a verified update, when it is one to answer; [] otherwise."""
        try:
            update = storable_value(json.loads(request.body))
        except (ValueError, UnicodeDecodeError):
            raise MalformedRequest("body is not JSON")
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise MalformedRequest("not a Telegram update (no update_id)")
        message = update.get("message")
        if message is None:
            kinds = [k for k in update if k != "update_id"]
            if not any(k in IGNORED_UPDATES for k in kinds):
                logger.warning("unsupported telegram update", extra={"event_type": ",".join(kinds)[:100]})
            return []
        if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
            raise MalformedRequest("message without chat")
        chat = message["chat"]
        sender = message.get("from") if isinstance(message.get("from"), dict) else {}
        if not isinstance(chat.get("id"), int) or not isinstance(message.get("message_id"), int):
            raise MalformedRequest("message without chat.id / message_id")
        chat_type = chat.get("type") if isinstance(chat.get("type"), str) else ""
        if sender.get("is_bot") or chat_type not in GROUP_TYPES | {"private"}:
            return []
        text, entities = message.get("text"), message.get("entities")
        if text is None:
            text, entities = message.get("caption"), message.get("caption_entities")
        if not isinstance(text, str) or not text.strip():
            return []
        entities = [e for e in entities if isinstance(e, dict)] if isinstance(entities, list) else []
        is_group = chat_type in GROUP_TYPES
        creds = channel.credentials or {}
        username = str(creds.get("bot_username") or "").lstrip("@").lower()
        bot_id = str(creds.get("bot_token") or "").split(":", 1)[0]
        text, addressed = _address(text, entities, username=username, bot_id=bot_id)
        if is_group and not (addressed or _replies_to_bot(message, bot_id)):
            return []
        text = text.strip()
        if not text:
            return []
        reply_context: dict[str, Any] = {"message_id": message["message_id"]}
        if message.get("is_topic_message") and isinstance(message.get("message_thread_id"), int):
            reply_context["message_thread_id"] = message["message_thread_id"]
        name = sender.get("username") or " ".join(str(sender[k]) for k in ("first_name", "last_name") if sender.get(k))
        return [
            Inbound(
                message_id=str(update["update_id"]),
                chat_id=str(chat["id"]),
                user_id=str(sender.get("id") or chat["id"]),
                user_name=str(name)[:200],
                text=text,
                is_group=is_group,
                raw=update,
                reply_context=reply_context,
            )
        ]

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        # An empty 200: a JSON body would be read as a Bot API method call.
        return HttpResponse(status=200)

    def rating_click(self, request: RawRequest, channel: Any) -> RatingClick | None:
        """The click of a ``callback_query`` update, or None for any other update (or a body that
        is not one: ``parse`` says why). Parley's only inline buttons are its rating buttons, so
        every callback query is taken for a click; data no Parley button carries becomes a click
        without a token, which the rating service refuses as invalid (and the clicker is told).
        Raises ``MalformedRequest`` for a callback query without an id or a sender."""
        try:
            update = storable_value(json.loads(request.body))
        except (ValueError, UnicodeDecodeError):
            return None
        query = update.get("callback_query") if isinstance(update, dict) else None
        if query is None:
            return None
        if not isinstance(query, dict):
            raise MalformedRequest("callback_query is not an object")
        sender = query.get("from") if isinstance(query.get("from"), dict) else {}
        query_id, user_id = query.get("id"), sender.get("id")
        if not isinstance(query_id, str) or not query_id or not isinstance(user_id, int) or isinstance(user_id, bool):
            raise MalformedRequest("callback query without an id or a sender")
        message = query.get("message") if isinstance(query.get("message"), dict) else {}
        chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
        chat_id = chat.get("id") if isinstance(chat.get("id"), int) and not isinstance(chat.get("id"), bool) else None
        message_id = message.get("message_id")
        message_id = message_id if isinstance(message_id, int) and not isinstance(message_id, bool) else None
        token, thumb = click_from_data(query.get("data"))
        language = sender.get("language_code")
        return RatingClick(
            token=token,
            thumb=thumb,
            user_ids=(str(user_id),),
            chat_id="" if chat_id is None else str(chat_id),
            raw={
                "callback_query_id": query_id[:100],
                "chat_id": chat_id,
                "message_id": message_id,
                "language": language[:10] if isinstance(language, str) else "",
            },
        )

    def rating_response(
        self, request: RawRequest, channel: Any, click: RatingClick, outcome: RatingOutcome
    ) -> HttpResponse:
        """200 with an ``answerCallbackQuery`` call as the body, which Telegram makes on Parley's
        behalf: the toast, in the clicker's language (Chinese or English; the answer's language
        when the clicker's is neither). A recorded rating also redraws the keyboard, off the request."""
        key = f"recorded_{outcome.thumb}" if outcome.ok else outcome.kind
        body = {
            "method": "answerCallbackQuery",
            "callback_query_id": click.raw.get("callback_query_id") or "",
            "text": rating_text(_toast_language(click.raw.get("language") or "", outcome.language), key),
        }
        if outcome.ok and click.raw.get("chat_id") is not None and click.raw.get("message_id") is not None:
            try:
                _FOLLOW_UPS.get().submit(self._redraw, channel, click, outcome)
            except RuntimeError:  # the pool is shutting down with the process
                logger.warning("telegram rating follow-up not scheduled")
        return JsonResponse(body, status=200, json_dumps_params={"ensure_ascii": False})

    def _redraw(self, channel: Any, click: RatingClick, outcome: RatingOutcome) -> None:
        """``editMessageReplyMarkup`` of the rated message: both buttons again, the chosen one
        marked. Best effort: the rating is stored whatever happens here ("message is not modified"
        when the same thumb is clicked twice, a message deleted meanwhile…)."""
        keyboard = rating_keyboard(click.token, detect_language(outcome.answer), chosen=outcome.thumb)
        token = str((channel.credentials or {}).get("bot_token") or "")
        if keyboard is None or not token:
            return
        body = {"chat_id": click.raw["chat_id"], "message_id": click.raw["message_id"], "reply_markup": keyboard}
        try:
            self._call(channel, token, "editMessageReplyMarkup", body)
        except PlatformError as exc:
            if "not modified" not in str(exc).lower():
                logger.warning("telegram rating keyboard not redrawn: %s", str(exc)[:200])
        except Exception as exc:  # nothing to retry for a courtesy update
            logger.warning("telegram rating keyboard not redrawn: %s", type(exc).__name__)

    # -- outbound ---------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[str]:
        """Telegram HTML messages of at most 4,096 characters each."""
        return TelegramHTML().render_chunks(markdown, MESSAGE_LIMIT, measure=utf16_len)

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """``sendMessage`` of ``reply`` (several when long). In groups the first message replies to
        the question. Returns the first message's id. Raises ``PlatformError``."""
        token = self._token(channel)
        chunks, keyboard = self._reply_chunks(channel, reply)
        first: SentRef | None = None
        for index, text in enumerate(chunks):
            body = self._message_body(target, text, first=index == 0)
            if keyboard and index == len(chunks) - 1:
                body["reply_markup"] = keyboard
            result = self._send_message(channel, token, body)
            ref = SentRef(platform_message_id=str(result.get("message_id") or ""), raw=result)
            first = first or ref
        return first or SentRef()

    def _token(self, channel: Any) -> str:
        token = str((channel.credentials or {}).get("bot_token") or "")
        if not token:
            raise PlatformError("Telegram channel has no bot_token", permanent=True)
        return token

    def _reply_chunks(self, channel: Any, reply: OutboundReply) -> tuple[list[str], dict | None]:
        """The HTML messages of ``reply`` (its rating link appended) and the rating keyboard that
        goes on the last of them (None when the answer has none)."""
        markdown = reply.markdown
        if reply.feedback_url:
            markdown += f"\n\n[Rate this answer]({reply.feedback_url})"
        keyboard = None
        if reply.feedback_token and rating_buttons_enabled(channel):
            keyboard = rating_keyboard(reply.feedback_token, detect_language(reply.markdown))
            if keyboard is None:
                logger.warning("telegram rating buttons left off: the feedback token does not fit in callback_data")
        return self.render(markdown), keyboard

    def _message_body(self, target: Target, text: str, *, first: bool) -> dict[str, Any]:
        """A ``sendMessage`` body for ``target``; in groups the ``first`` message quotes the question."""
        context = target.reply_context or {}
        body: dict[str, Any] = {
            "chat_id": _chat_id(target.chat_id),
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if context.get("message_thread_id"):
            body["message_thread_id"] = context["message_thread_id"]
        if first and target.is_group and context.get("message_id"):
            body["reply_parameters"] = {"message_id": context["message_id"], "allow_sending_without_reply": True}
        return body

    # -- streaming: one message, edited as the answer grows (``streaming.py``) ----------------------
    # ``sendMessageDraft`` (Bot API 9.x) is not used: its draft is an ephemeral preview in private
    # chats only, which a separate ``sendMessage`` must then persist; an edited message works in
    # groups too and is itself the answer the rating buttons attach to.

    def stream_interval(self, channel: Any, target: Target) -> float | None:
        """About one message per second in a chat, twenty a minute in a group (Telegram's limits)."""
        return STREAM_INTERVAL_GROUP if target.is_group else STREAM_INTERVAL

    def stream_start(self, channel: Any, target: Target, markdown: str) -> int:
        token = self._token(channel)
        body = self._message_body(target, self.render(markdown)[0], first=True)
        result = self._send_message(channel, token, body)
        message_id = result.get("message_id")
        if not isinstance(message_id, int):
            raise PlatformError("Telegram sendMessage: no message_id in the answer", permanent=True)
        return message_id

    def stream_update(self, channel: Any, target: Target, handle: int, markdown: str) -> None:
        # While it grows, only the first 4,096 characters are shown; ``stream_finish`` sends the rest.
        self._edit_text(channel, self._token(channel), target, handle, self.render(markdown)[0], None)

    def stream_finish(self, channel: Any, target: Target, handle: int, reply: OutboundReply) -> SentRef:
        """The streamed message becomes the answer's first message (edited once more when its text
        or buttons differ); what does not fit follows as new messages, the buttons on the last."""
        token = self._token(channel)
        chunks, keyboard = self._reply_chunks(channel, reply)
        last = len(chunks) - 1
        result = self._edit_text(channel, token, target, handle, chunks[0], keyboard if last == 0 else None)
        for index, text in enumerate(chunks[1:], start=1):
            time.sleep(self.stream_interval(channel, target) or 0)  # within the chat's rate limit
            body = self._message_body(target, text, first=False)
            if keyboard and index == last:
                body["reply_markup"] = keyboard
            self._send_message(channel, token, body)
        return SentRef(platform_message_id=str(handle), raw=result)

    def stream_abandon(self, channel: Any, target: Target, handle: int) -> None:
        self._call(
            channel, self._token(channel), "deleteMessage", {"chat_id": _chat_id(target.chat_id), "message_id": handle}
        )

    def _edit_text(
        self, channel: Any, token: str, target: Target, message_id: int, text: str, keyboard: dict | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "chat_id": _chat_id(target.chat_id),
            "message_id": message_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if keyboard:
            body["reply_markup"] = keyboard
        try:
            try:
                return self._call(channel, token, "editMessageText", body)
            except _EntitiesRefused:
                logger.warning("telegram refused the HTML; editing in plain text")
                plain = {k: v for k, v in body.items() if k != "parse_mode"}
                plain["text"] = strip_tags(text)
                return self._call(channel, token, "editMessageText", plain)
        except PlatformError as exc:
            if "not modified" in str(exc).lower():
                return {"message_id": message_id}  # the message already says exactly this
            raise

    def set_webhook(self, channel: Any) -> None:
        """Point the bot at this channel's webhook URL with its secret token, asking only for
        messages and rating-button clicks (``ALLOWED_UPDATES``). Raises ``PlatformError``."""
        creds = channel.credentials or {}
        token, secret = str(creds.get("bot_token") or ""), str(creds.get("secret_token") or "")
        if not token or not secret:
            raise PlatformError("Telegram channel needs bot_token and secret_token", permanent=True)
        body = {"url": channel.webhook_url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES}
        self._call(channel, token, "setWebhook", body)

    def _send_message(self, channel: Any, token: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call(channel, token, "sendMessage", body)
        except _EntitiesRefused:
            # Our HTML is generated, so this should not happen; if Telegram still refuses it, the
            # user gets the words without formatting rather than no answer.
            logger.warning("telegram refused the HTML; sending plain text")
            plain = {k: v for k, v in body.items() if k != "parse_mode"}
            plain["text"] = strip_tags(body["text"])
            return self._call(channel, token, "sendMessage", plain)

    def _call(self, channel: Any, token: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
        # The token is part of the URL: errors name the method, never the URL.
        url = f"{self.api_base(channel)}/bot{token}/{method}"
        status, data = http.request("Telegram", "POST", url, what=method, json=body)
        if status == 200 and data.get("ok"):
            result = data.get("result")
            return result if isinstance(result, dict) else {}
        description = str(data.get("description") or f"HTTP {status}")[:300]
        if status == 400 and "can't parse entities" in description.lower():
            raise _EntitiesRefused(description, permanent=True, status=status)
        transient = status == 429 or status >= 500
        raise PlatformError(f"Telegram {method}: {description}", permanent=not transient, status=status)


class _EntitiesRefused(PlatformError):
    pass


def _chat_id(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id  # "@channelusername"


def _toast_language(clicker: str, answer: str) -> str:
    """The language of a click's toast: the clicker's app language when Parley speaks it (Telegram
    sends an IETF tag such as "zh-hans" or "en"), else the answer's."""
    clicker = clicker.lower()
    return clicker if clicker.startswith(("zh", "en")) else answer


def _replies_to_bot(message: dict[str, Any], bot_id: str) -> bool:
    replied = message.get("reply_to_message")
    if not isinstance(replied, dict) or not isinstance(replied.get("from"), dict):
        return False
    return bool(bot_id) and str(replied["from"].get("id")) == bot_id


def _address(text: str, entities: list[dict[str, Any]], *, username: str, bot_id: str) -> tuple[str, bool]:
    """``text`` with this bot's mentions removed and ``/cmd@bot`` shortened to ``/cmd``, and whether
    the text addressed the bot (a command naming it, an @-mention or a text mention of it)."""
    # Entity offsets count UTF-16 code units, so cut in that encoding.
    units = text.encode("utf-16-le")
    cuts: list[tuple[int, int]] = []
    addressed = False
    for entity in entities:
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length <= 0:
            continue
        value = units[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")
        kind = entity.get("type")
        if kind == "bot_command" and "@" in value:
            name = value.split("@", 1)[1].lower()
            if username and name == username:
                addressed = True
                at = offset + utf16_len(value.split("@", 1)[0])
                cuts.append((at, offset + length))
        elif kind == "mention" and username and value.lstrip("@").lower() == username:
            addressed = True
            cuts.append((offset, offset + length))
        elif kind == "text_mention" and isinstance(entity.get("user"), dict):
            if bot_id and str(entity["user"].get("id")) == bot_id:
                addressed = True
                cuts.append((offset, offset + length))
    for start, end in sorted(cuts, reverse=True):
        units = units[: start * 2] + units[end * 2 :]
    return re.sub(r"[ \t]{2,}", " ", units.decode("utf-16-le", errors="replace")).strip(), addressed
