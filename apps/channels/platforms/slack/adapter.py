"""Slack Events API over HTTP.

Inbound: every request (the ``url_verification`` handshake included) is signed with the app's
signing secret over ``v0:<timestamp>:<raw body>``; requests older or newer than 5 minutes are
refused. ``app_mention`` (in channels) and ``message`` in direct messages become ``Inbound``\\s,
de-duplicated on ``event_id`` (Slack's retries repeat it, with ``X-Slack-Retry-Num``). Messages
from bots — this one included — and edits, deletions and joins are never answered.

Outbound: ``chat.postMessage`` with the bot token, text in mrkdwn. A mention in a channel is
answered in a thread under it (so a busy channel is not flooded); a direct message is answered in
the conversation (or in its thread, when it was written in one).

Retries without duplicates: Slack has no idempotency key for ``chat.postMessage``, so every message
carries the reply's key in its message metadata (``event_type`` ``parley_reply``). A send whose
outcome is unknown (a timeout or a dropped connection after the request was written, a 5xx) is
remembered in the cache; the next send of the same reply first looks for its messages in the
conversation's recent history and posts only what is not there. Without a history scope it posts
again (at-least-once) and warns once per channel and hour.

Rating buttons: an answer that can be rated ends with an ``actions`` block of two buttons
(``parley_rate_up`` / ``parley_rate_down``, labels in the answer's language) whose ``value`` is the
answer's signed feedback token. Clicks arrive as interactivity requests (form body with a
``payload`` of type ``block_actions``) on the same URL, signed like events; they are acknowledged
at once, and the message is updated afterwards off the request (``chat.update``: the chosen
button highlighted and a thanks line), or the clicker is told privately (``chat.postEphemeral``)
why the click did not count.

Official SDK: ``slack_sdk`` (its ``SignatureVerifier`` and ``WebClient``).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.error import URLError
from urllib.parse import parse_qs

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier

from apps.core import netguard
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
from .mrkdwn import Mrkdwn

logger = logging.getLogger(__name__)

MAX_SKEW_S = 300  # Slack's own replay window
MESSAGE_LIMIT = 3900  # Slack recommends at most 4,000 characters of text per message
#: Seconds between updates of a streamed answer (about one message a second in a conversation).
STREAM_INTERVAL = 1.0

# Outer envelope types acknowledged without action.
IGNORED_TYPES = {"app_rate_limited"}
# Inner event types Parley subscribes to by accident or for others' sake: acknowledged, not stored.
IGNORED_EVENTS = {
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
    "member_joined_channel",
    "member_left_channel",
    "channel_created",
    "channel_rename",
    "reaction_added",
    "reaction_removed",
    "team_join",
    "user_change",
    "im_history_changed",
}
# Message subtypes that still carry a person's words; every other subtype (bot_message,
# message_changed, message_deleted, channel_join, …) is not answered.
ANSWERED_SUBTYPES = {"", "file_share", "thread_broadcast"}
# Unstable errors: trying again later can help.
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

# Errors after which a message may have been posted all the same (Slack: "it's possible some aspect
# of the operation succeeded before the error was raised").
UNSURE_ERRORS = {"internal_error", "fatal_error"}

#: ``event_type`` of the message metadata that carries the reply's idempotency key.
METADATA_EVENT = "parley_reply"
#: How long a send with an unknown outcome is remembered (the pipeline retries well within it).
PENDING_TTL_S = 3600
#: History is read from this long before the first attempt (clock skew between Parley and Slack).
HISTORY_MARGIN_S = 60
#: Messages read back from the conversation (or thread) when looking for an earlier attempt.
HISTORY_LIMIT = 50

#: ``action_id`` of the rating buttons, by thumb; ``block_id`` of the block that holds them.
RATING_ACTIONS = {"parley_rate_up": "up", "parley_rate_down": "down"}
RATING_BLOCK_ID = "parley_rating"
#: A section block's text limit: an answer with buttons is cut into parts of at most this size.
SECTION_LIMIT = 3000
#: Message updates after a click run here, off the request (at most this many at once per process).
_FOLLOW_UPS = LazyPool("parley-slack-rating", lambda: 2)

USER_MENTION_RE = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
LINK_RE = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
SPECIAL_RE = re.compile(r"<[!#]([^|>]+)(?:\|([^>]*))?>")


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class _RefusedConnectionRetry(ConnectionErrorRetryHandler):
    """The SDK's connection-error retry, limited to connections that were refused: the request was
    never written, so posting it again cannot post it twice. (The SDK's default also retries a
    connection reset after the request was sent, which can duplicate a message.)"""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return response is None and _never_sent(error)


class OutcomeUnknown(PlatformError):
    """``chat.postMessage`` failed after the request may have reached Slack: the message may
    have been posted. Retryable (never permanent)."""


def slack_text_to_plain(text: str, *, bot_user_id: str = "") -> str:
    """Slack's message text as the user meant it: the bot's mention removed, other mentions as
    ``@U…``, links as their label (or URL), and ``&amp; &lt; &gt;`` unescaped."""

    def mention(m: re.Match) -> str:
        return "" if bot_user_id and m.group(1) == bot_user_id else f"@{m.group(1)}"

    text = USER_MENTION_RE.sub(mention, text)
    text = LINK_RE.sub(lambda m: m.group(2) or m.group(1), text)
    text = SPECIAL_RE.sub(lambda m: m.group(2) or f"@{m.group(1)}", text)
    return html.unescape(text).strip()


class SlackAdapter(PlatformAdapter):
    platform = "slack"
    default_api_base = "https://slack.com"
    credential_keys = ("signing_secret", "bot_token", "rating_buttons", "slash_command")
    required_credentials = ("signing_secret", "bot_token")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        # The clock is injectable so tests can replay Slack's published examples at their own time.
        self.clock = clock

    # -- inbound ----------------------------------------------------------------------------------

    def handshake(self, request: RawRequest, channel: Any) -> HttpResponse | None:
        """Answers a signed ``url_verification`` with its challenge; None for other requests."""
        payload = _json_or_none(request.body)
        if not isinstance(payload, dict) or payload.get("type") != "url_verification":
            return None
        self.verify(request, channel)
        challenge = payload.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise MalformedRequest("url_verification without a challenge")
        return JsonResponse({"challenge": challenge})

    def verify(self, request: RawRequest, channel: Any) -> None:
        """Raises ``SignatureInvalid`` (401) for a missing, stale (> 5 min) or wrong signature."""
        if request.method != "POST":
            raise WebhookRejected(405, "Slack events are POST requests")
        secret = str((channel.credentials or {}).get("signing_secret") or "")
        if not secret.strip():
            raise WebhookRejected(403, "channel has no signing_secret")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise SignatureInvalid("missing X-Slack-Request-Timestamp / X-Slack-Signature")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureInvalid("malformed X-Slack-Request-Timestamp")
        if abs(self.clock() - int(timestamp)) > MAX_SKEW_S:
            raise SignatureInvalid("stale request: timestamp outside the 5-minute window")
        try:
            valid = SignatureVerifier(secret, clock=_Clock(self.clock)).is_valid(request.body, timestamp, signature)
        except UnicodeDecodeError:
            valid = False  # Slack only sends UTF-8: such bytes cannot carry its signature
        if not valid:
            raise SignatureInvalid()

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        """Messages to answer in a verified request; [] for ignored or unsupported events."""
        payload = _json_or_none(request.body)
        if payload is None:
            form = _form_or_none(request.body)
            if form and "command" in form:
                return slash_command(form, channel)
            if form and "payload" in form:
                logger.warning("unsupported slack request (interactivity other than the rating buttons)")
                return []
            raise MalformedRequest("body is neither JSON nor a Slack form")
        if not isinstance(payload, dict):
            raise MalformedRequest("body is not a JSON object")
        kind = str(payload.get("type") or "")
        if kind in IGNORED_TYPES:
            return []
        if kind != "event_callback":
            logger.warning("unsupported slack payload type", extra={"event_type": kind[:100]})
            return []
        event = payload.get("event")
        event_id = payload.get("event_id")
        if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
            raise MalformedRequest("event_callback without event / event_id")
        event_type = str(event.get("type") or "")
        if event_type in IGNORED_EVENTS:
            return []
        if event_type not in ("app_mention", "message"):
            logger.warning("unsupported slack event", extra={"event_type": event_type[:100]})
            return []
        bot_user_id = _bot_user_id(payload)
        if event.get("bot_id") or str(event.get("subtype") or "") not in ANSWERED_SUBTYPES:
            return []  # bots (ourselves included), edits, deletions, joins…
        user, chat, ts = event.get("user"), event.get("channel"), event.get("ts")
        if not all(isinstance(v, str) and v for v in (user, chat, ts)):
            raise MalformedRequest(f"{event_type} without user / channel / ts")
        if bot_user_id and user == bot_user_id:
            return []
        is_direct = event.get("channel_type") == "im" or chat.startswith("D")
        if event_type == "message" and not is_direct:
            return []  # channel chatter: the bot answers there only when mentioned (app_mention)
        if event_type == "app_mention" and is_direct:
            return []  # the same words arrive as a direct message event
        text = slack_text_to_plain(str(event.get("text") or ""), bot_user_id=bot_user_id)
        if not text:
            return []
        thread_ts = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else ""
        if event_type == "app_mention":
            thread_ts = thread_ts or ts
        return [
            Inbound(
                message_id=event_id,
                chat_id=chat,
                user_id=user,
                text=text,
                is_group=not is_direct,
                raw=payload,
                reply_context={"thread_ts": thread_ts, "ts": ts, "team_id": str(payload.get("team_id") or "")},
            )
        ]

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        return HttpResponse(status=200)

    def rating_click(self, request: RawRequest, channel: Any) -> RatingClick | None:
        """A click on a rating button: an interactivity request (form field ``payload``) of type
        ``block_actions`` whose action is ``parley_rate_up`` / ``parley_rate_down``. None for
        event bodies and for other interactions (acknowledged by ``parse`` without action)."""
        if _json_or_none(request.body) is not None:
            return None
        form = _form_or_none(request.body)
        raw = (form or {}).get("payload")
        if not raw:
            return None
        payload = _json_or_none(raw[0].encode())
        if not isinstance(payload, dict):
            raise MalformedRequest("interactivity payload is not a JSON object")
        if payload.get("type") != "block_actions":
            return None
        actions = payload.get("actions")
        action = (
            next(
                (a for a in actions if isinstance(a, dict) and str(a.get("action_id")) in RATING_ACTIONS),
                None,
            )
            if isinstance(actions, list)
            else None
        )
        if action is None:
            return None
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        token, user_id = action.get("value"), user.get("id")
        if not isinstance(token, str) or not token or not isinstance(user_id, str) or not user_id:
            raise MalformedRequest("rating click without a value or a user")
        container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
        chat = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        chat_id = str(container.get("channel_id") or chat.get("id") or "")
        return RatingClick(
            token=token[:500],
            thumb=RATING_ACTIONS[str(action["action_id"])],
            user_ids=(user_id,),
            chat_id=chat_id,
            raw={
                "channel": chat_id,
                "ts": str(container.get("message_ts") or message.get("ts") or ""),
                "blocks": message.get("blocks") if isinstance(message.get("blocks"), list) else [],
                "text": str(message.get("text") or ""),
                "metadata": message.get("metadata") if isinstance(message.get("metadata"), dict) else None,
            },
        )

    def rating_response(
        self, request: RawRequest, channel: Any, click: RatingClick, outcome: RatingOutcome
    ) -> HttpResponse:
        """200 at once for a genuine click (Slack shows nothing of the body); the message update or
        the private note follows off the request. A forged value (no such answer on this channel,
        an altered token) gets its 4xx and nothing else."""
        if outcome.kind == "invalid":
            return HttpResponse(status=outcome.status)
        try:
            _FOLLOW_UPS.get().submit(self._follow_up, channel, click, outcome)
        except RuntimeError:  # the pool is shutting down with the process
            logger.warning("slack rating follow-up not scheduled")
        return HttpResponse(status=200)

    def _follow_up(self, channel: Any, click: RatingClick, outcome: RatingOutcome) -> None:
        """After a click: ``chat.update`` of the rated message (the chosen button highlighted, a
        thanks line) or a ``chat.postEphemeral`` to the clicker saying why it did not count.
        Best effort: the rating is stored whatever happens here."""
        chat_id, ts = click.raw.get("channel") or click.chat_id, click.raw.get("ts") or ""
        try:
            client = self.client(channel)
            if outcome.ok and chat_id and ts:
                kwargs: dict[str, Any] = {
                    "channel": chat_id,
                    "ts": ts,
                    "text": click.raw.get("text") or rating_text(outcome.language, "recorded"),
                    "blocks": rated_blocks(click.raw.get("blocks") or [], click.thumb, outcome.language),
                }
                if click.raw.get("metadata"):
                    kwargs["metadata"] = click.raw["metadata"]  # keep the parley_reply idempotency key
                client.chat_update(**kwargs)
            elif not outcome.ok and chat_id:
                client.chat_postEphemeral(
                    channel=chat_id, user=click.user_ids[0], text=rating_text(outcome.language, outcome.kind)
                )
        except Exception as exc:  # network, Slack errors: nothing to retry for a courtesy update
            logger.warning("slack rating follow-up failed: %s", type(exc).__name__)

    # -- outbound ---------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[str]:
        """mrkdwn messages of at most ``MESSAGE_LIMIT`` characters each."""
        return Mrkdwn().render_chunks(markdown, MESSAGE_LIMIT)

    def client(self, channel: Any) -> WebClient:
        token = str((channel.credentials or {}).get("bot_token") or "")
        if not token:
            raise PlatformError("Slack channel has no bot_token", permanent=True)
        # slack_sdk connects with urllib, outside the guarded httpx clients: an API base of the
        # channel's own is checked (its host resolved) before each client is made.
        refused = netguard.check_url(channel.api_base, resolve_host=True) if channel.api_base else ""
        if refused:
            raise PlatformError(f"slack: {refused}", permanent=True)
        return WebClient(
            token=token,
            base_url=self.api_base(channel) + "/api/",
            timeout=http.timeout_seconds(),
            ssl=http.system_tls_context(),
            retry_handlers=[_RefusedConnectionRetry()],
        )

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """``chat.postMessage`` of ``reply`` in mrkdwn (several messages when it is long), in the
        target's thread when it has one. Returns the first message's ``ts``. Raises ``PlatformError``.

        With an ``idempotency_key``, each message carries it in its metadata, and a failed send is
        remembered (which parts were posted, whether the last one may have been): sending the same
        reply again skips the parts already posted, looking for the uncertain one in the
        conversation's history first (module docstring)."""
        parts, buttons = self._reply_parts(channel, reply)
        client = self.client(channel)
        thread_ts = str((target.reply_context or {}).get("thread_ts") or "")
        key = reply.idempotency_key
        pending_key = _pending_key(channel, target.chat_id, key) if key else ""
        pending = cache.get(pending_key) if key else None
        pending = pending if isinstance(pending, dict) else None
        since = float(pending["since"]) if pending else time.time()
        posted: dict[int, dict[str, Any]] = {int(k): v for k, v in (pending or {}).get("posted", {}).items()}
        if pending and pending.get("unsure"):
            posted.update(self._find_posted(client, channel, target.chat_id, thread_ts, key, since))
        first: SentRef | None = None
        for part, text in enumerate(parts):
            if part in posted:
                data = posted[part]
            else:
                kwargs: dict[str, Any] = {
                    "channel": target.chat_id,
                    "text": text,
                    "mrkdwn": True,
                    "unfurl_links": False,
                }
                if thread_ts:
                    kwargs["thread_ts"] = thread_ts
                if buttons and part == len(parts) - 1:
                    # With blocks, ``text`` is only the notification fallback: the answer goes in a section.
                    kwargs["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}, *buttons]
                if key:
                    kwargs["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"reply": key, "part": part}}
                try:
                    data = self._call(client, kwargs)
                except PlatformError as exc:
                    if key and not exc.permanent:
                        state = {"since": since, "unsure": isinstance(exc, OutcomeUnknown), "posted": posted}
                        cache.set(pending_key, state, timeout=PENDING_TTL_S)
                    raise
                posted[part] = data
            ref = SentRef(platform_message_id=str(data.get("ts") or ""), raw=data)
            first = first or ref
        if pending:
            cache.delete(pending_key)
        return first or SentRef()

    # -- streaming: one message, updated as the answer grows (``streaming.py``) ----------------------
    # ``chat.update`` rather than ``chat.startStream`` / ``appendStream`` / ``stopStream``: those
    # stream only into a thread under the user's message and need the recipient's team and user ids,
    # while an updated message works in direct messages and threads alike, as ``send`` does.

    def stream_interval(self, channel: Any, target: Target) -> float | None:
        """About one message or update a second in a conversation (``chat.postMessage``'s limit;
        ``chat.update`` is Tier 3, 50+ a minute)."""
        return STREAM_INTERVAL

    def stream_start(self, channel: Any, target: Target, markdown: str) -> str:
        kwargs: dict[str, Any] = {
            "channel": target.chat_id,
            "text": self.render(markdown)[0],
            "mrkdwn": True,
            "unfurl_links": False,
        }
        thread_ts = str((target.reply_context or {}).get("thread_ts") or "")
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        data = self._call(self.client(channel), kwargs)
        ts = data.get("ts")
        if not isinstance(ts, str) or not ts:
            raise PlatformError("Slack chat.postMessage: no ts in the answer", permanent=True)
        return ts

    def stream_update(self, channel: Any, target: Target, handle: str, markdown: str) -> None:
        # While it grows, only the first part is shown; ``stream_finish`` posts the rest.
        kwargs = {"channel": target.chat_id, "ts": handle, "text": self.render(markdown)[0]}
        self._call(self.client(channel), kwargs, method="chat.update")

    def stream_finish(self, channel: Any, target: Target, handle: str, reply: OutboundReply) -> SentRef:
        """The streamed message becomes the answer's first part (``chat.update``, blocks with the
        rating buttons when it is the only part); the rest is posted after it as ``send`` would."""
        client = self.client(channel)
        parts, buttons = self._reply_parts(channel, reply)
        last = len(parts) - 1
        kwargs: dict[str, Any] = {"channel": target.chat_id, "ts": handle, "text": parts[0]}
        if buttons and last == 0:
            kwargs["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": parts[0]}}, *buttons]
        data = self._call(client, kwargs, method="chat.update")
        thread_ts = str((target.reply_context or {}).get("thread_ts") or "")
        for part, text in enumerate(parts[1:], start=1):
            time.sleep(STREAM_INTERVAL)  # within the conversation's rate limit
            more: dict[str, Any] = {"channel": target.chat_id, "text": text, "mrkdwn": True, "unfurl_links": False}
            if thread_ts:
                more["thread_ts"] = thread_ts
            if buttons and part == last:
                more["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}, *buttons]
            self._call(client, more)
        return SentRef(platform_message_id=handle, raw=data)

    def stream_abandon(self, channel: Any, target: Target, handle: str) -> None:
        self._call(self.client(channel), {"channel": target.chat_id, "ts": handle}, method="chat.delete")

    def _reply_parts(self, channel: Any, reply: OutboundReply) -> tuple[list[str], list[dict[str, Any]]]:
        """The mrkdwn parts of ``reply`` (its rating link appended) and the rating buttons' blocks
        that go with the last part ([] when the answer has none)."""
        markdown = reply.markdown
        if reply.feedback_url:
            markdown += f"\n\n[Rate this answer]({reply.feedback_url})"
        buttons = rating_blocks(reply.feedback_token, detect_language(reply.markdown))
        if not rating_buttons_enabled(channel):
            buttons = []
        parts = Mrkdwn().render_chunks(markdown, SECTION_LIMIT) if buttons else self.render(markdown)
        return parts, buttons

    def _call(self, client: WebClient, kwargs: dict[str, Any], *, method: str = "chat.postMessage") -> dict[str, Any]:
        calls = {
            "chat.postMessage": client.chat_postMessage,
            "chat.update": client.chat_update,
            "chat.delete": client.chat_delete,
        }
        try:
            response = calls[method](**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {status}")
            message = f"Slack {method}: {error}"
            if status >= 500 or error in UNSURE_ERRORS:
                raise OutcomeUnknown(message, status=status)
            transient = status == 429 or error in TRANSIENT_ERRORS
            raise PlatformError(message, permanent=not transient, status=status)
        except Exception as exc:  # network failures, timeouts, a body that is not JSON
            message = f"Slack {method}: {type(exc).__name__}"
            if _never_sent(exc):
                raise PlatformError(message)
            raise OutcomeUnknown(message)
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _find_posted(
        self, client: WebClient, channel: Any, chat_id: str, thread_ts: str, key: str, since: float
    ) -> dict[int, dict[str, Any]]:
        """The parts of reply ``key`` found in the conversation (or thread) since ``since``, by part
        number. {} when the history cannot be read: the caller then posts again (at-least-once)."""
        args: dict[str, Any] = {
            "channel": chat_id,
            "oldest": f"{since - HISTORY_MARGIN_S:.6f}",
            "limit": HISTORY_LIMIT,
            "include_all_metadata": True,
        }
        method = "conversations.replies" if thread_ts else "conversations.history"
        try:
            if thread_ts:
                response = client.conversations_replies(ts=thread_ts, **args)
            else:
                response = client.conversations_history(**args)
            messages = response.data.get("messages") if isinstance(response.data, dict) else None
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            self._warn_history_unreadable(channel, chat_id, method, str(data.get("error") or "error"), data)
            return {}
        except Exception as exc:  # network failures, timeouts, a body that is not JSON
            self._warn_history_unreadable(channel, chat_id, method, type(exc).__name__, {})
            return {}
        found: dict[int, dict[str, Any]] = {}
        for message in messages if isinstance(messages, list) else []:
            meta = message.get("metadata") if isinstance(message, dict) else None
            if not isinstance(meta, dict) or meta.get("event_type") != METADATA_EVENT:
                continue
            payload = meta.get("event_payload")
            if isinstance(payload, dict) and payload.get("reply") == key and isinstance(message.get("ts"), str):
                part = payload.get("part", 0)
                if isinstance(part, int) and not isinstance(part, bool):
                    found.setdefault(part, {"ok": True, "channel": chat_id, "ts": message["ts"], "message": message})
        return found

    def _warn_history_unreadable(self, channel: Any, chat_id: str, method: str, error: str, data: dict) -> None:
        """One warning per channel, reason and hour (every process shares the cache)."""
        if not cache.add(f"parley:slack:history-warned:{channel.pk}:{error[:60]}", 1, timeout=PENDING_TTL_S):
            return
        needed = str(data.get("needed") or "") or _history_scope(chat_id)
        logger.warning(
            "slack %s failed (%s): a reply whose first send timed out is posted again and may appear "
            "twice; grant the bot the %s scope to avoid duplicates",
            method,
            error[:100],
            needed,
            extra={"slack_method": method, "slack_error": error[:100], "needed_scope": needed},
        )


def rating_blocks(token: str, language: str, *, chosen: str = "") -> list[dict[str, Any]]:
    """The ``actions`` block of an answer's 👍 / 👎 buttons (none without a feedback token). The
    ``chosen`` thumb's button is highlighted (``primary``)."""
    if not token:
        return []
    elements = []
    for action_id, thumb in RATING_ACTIONS.items():
        button: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": rating_text(language, thumb), "emoji": True},
            "value": token,
        }
        if thumb == chosen:
            button["style"] = "primary"
        elements.append(button)
    return [{"type": "actions", "block_id": RATING_BLOCK_ID, "elements": elements}]


def rated_blocks(blocks: list[Any], thumb: str, language: str) -> list[Any]:
    """``blocks`` of a rated message: the rating buttons again with ``thumb`` highlighted (the
    rating stays changeable), followed by a thanks line in the answer's language."""
    out: list[Any] = []
    for block in blocks:
        if isinstance(block, dict) and block.get("block_id") == RATING_BLOCK_ID:
            elements = block.get("elements") if isinstance(block.get("elements"), list) else []
            token = next((e.get("value") for e in elements if isinstance(e, dict) and e.get("value")), "")
            out += rating_blocks(str(token), language, chosen=thumb)
        elif isinstance(block, dict) and block.get("block_id") == f"{RATING_BLOCK_ID}_thanks":
            continue
        else:
            out.append(block)
    thanks = {"type": "mrkdwn", "text": rating_text(language, f"recorded_{thumb}")}
    return [*out, {"type": "context", "block_id": f"{RATING_BLOCK_ID}_thanks", "elements": [thanks]}]


def _never_sent(error: BaseException | None) -> bool:
    """The request cannot have reached Slack: the connection was refused or the host not found."""
    reason = error.reason if isinstance(error, URLError) else None
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))


def _pending_key(channel: Any, chat_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{chat_id}\x00{idempotency_key}".encode()).hexdigest()[:24]
    return f"parley:slack:pending-send:{channel.pk}:{digest}"


def _history_scope(chat_id: str) -> str:
    """The scope ``conversations.history`` needs for this kind of conversation."""
    if chat_id.startswith("D"):
        return "im:history"
    if chat_id.startswith("G"):
        return "groups:history (private channels) or mpim:history (group DMs)"
    return "channels:history (public channels) or groups:history (private channels)"


def _bot_user_id(payload: dict[str, Any]) -> str:
    authorizations = payload.get("authorizations")
    for auth in authorizations if isinstance(authorizations, list) else []:
        if isinstance(auth, dict) and auth.get("is_bot") and isinstance(auth.get("user_id"), str):
            return auth["user_id"]
    return ""


#: The slash command that carries a question (or a Parley command) in its text, unless the
#: channel's ``slash_command`` credential names another.
DEFAULT_SLASH_COMMAND = "/parley"


def slash_command(form: dict[str, list[str]], channel: Any) -> list[Inbound]:
    """A slash command as the message it stands for. Slack never posts a text that starts with "/"
    as a message, so Parley's commands reach it only this way: registered in the app with the
    channel's webhook URL as Request URL, ``/reset`` arrives as ``command=/reset`` and becomes the
    message "/reset" (``/lang zh`` → "/lang zh"). The carrier command (``/parley``, or the
    channel's ``slash_command``) takes its text as the message: ``/parley what are your hours?``;
    without text it asks for ``/help``. Answered in the conversation it was typed in, like a direct
    message or a mention; nothing is shown for the command itself."""

    def field(name: str) -> str:
        return str(storable_value((form.get(name) or [""])[0])).strip()

    command, text = field("command").lower(), field("text")
    user, chat, trigger = field("user_id"), field("channel_id"), field("trigger_id")
    if not command.startswith("/") or not (user and chat and trigger):
        raise MalformedRequest("slash command without command / user_id / channel_id / trigger_id")
    carrier = str((channel.credentials or {}).get("slash_command") or DEFAULT_SLASH_COMMAND).strip().lower()
    message = (text or "/help") if command == carrier else f"{command} {text}".strip()
    is_direct = chat.startswith("D")
    return [
        Inbound(
            message_id=f"slash:{trigger[:200]}",
            chat_id=chat,
            user_id=user,
            text=message[:4000],
            is_group=not is_direct,
            raw={"command": command, "channel_id": chat, "user_id": user, "team_id": field("team_id")},
            reply_context={"thread_ts": "", "ts": "", "team_id": field("team_id")},
        )
    ]


def _json_or_none(body: bytes) -> Any:
    try:
        return storable_value(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return None


def _form_or_none(body: bytes) -> dict[str, list[str]] | None:
    try:
        return parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (ValueError, UnicodeDecodeError):
        return None
