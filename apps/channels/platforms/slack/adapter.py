"""Slack Events API over HTTP.

Inbound: every request (the ``url_verification`` handshake included) is signed with the app's
signing secret over ``v0:<timestamp>:<raw body>``; requests older or newer than 5 minutes are
refused. ``app_mention`` (in channels) and ``message`` in direct messages become ``Inbound``\\s,
de-duplicated on ``event_id`` (Slack's retries repeat it, with ``X-Slack-Retry-Num``). Messages
from bots — this one included — and edits, deletions and joins are never answered.

Outbound: ``chat.postMessage`` with the bot token, text in mrkdwn. A mention in a channel is
answered in a thread under it (so a busy channel is not flooded); a direct message is answered in
the conversation (or in its thread, when it was written in one).

Official SDK: ``slack_sdk`` (its ``SignatureVerifier`` and ``WebClient``).
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from django.http import HttpRequest, HttpResponse, JsonResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier

from ..base import (
    Inbound,
    MalformedRequest,
    OutboundReply,
    PlatformAdapter,
    PlatformError,
    SentRef,
    SignatureInvalid,
    Target,
    WebhookRejected,
)
from .mrkdwn import Mrkdwn

logger = logging.getLogger(__name__)

MAX_SKEW_S = 300  # Slack's own replay window
TIMEOUT_S = 10
MESSAGE_LIMIT = 3900  # Slack recommends at most 4,000 characters of text per message

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

USER_MENTION_RE = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
LINK_RE = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
SPECIAL_RE = re.compile(r"<[!#]([^|>]+)(?:\|([^>]*))?>")


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


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
    credential_keys = ("signing_secret", "bot_token")
    required_credentials = ("signing_secret", "bot_token")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        # The clock is injectable so tests can replay Slack's published examples at their own time.
        self.clock = clock

    # -- inbound ----------------------------------------------------------------------------------

    def handshake(self, request: HttpRequest, channel: Any) -> HttpResponse | None:
        """Answers a signed ``url_verification`` with its challenge; None for other requests."""
        payload = _json_or_none(request.body)
        if not isinstance(payload, dict) or payload.get("type") != "url_verification":
            return None
        self.verify(request, channel)
        challenge = payload.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise MalformedRequest("url_verification without a challenge")
        return JsonResponse({"challenge": challenge})

    def verify(self, request: HttpRequest, channel: Any) -> None:
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

    def parse(self, request: HttpRequest, channel: Any) -> list[Inbound]:
        """Messages to answer in a verified request; [] for ignored or unsupported events."""
        payload = _json_or_none(request.body)
        if payload is None:
            form = _form_or_none(request.body)
            if form and ("command" in form or "payload" in form):
                logger.warning("unsupported slack request (slash command or interactivity)")
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

    def ack(self, request: HttpRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        return HttpResponse(status=200)

    # -- outbound ---------------------------------------------------------------------------------

    def render(self, markdown: str) -> list[str]:
        """mrkdwn messages of at most ``MESSAGE_LIMIT`` characters each."""
        return Mrkdwn().render_chunks(markdown, MESSAGE_LIMIT)

    def client(self, channel: Any) -> WebClient:
        token = str((channel.credentials or {}).get("bot_token") or "")
        if not token:
            raise PlatformError("Slack channel has no bot_token", permanent=True)
        return WebClient(token=token, base_url=self.api_base(channel) + "/api/", timeout=TIMEOUT_S)

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """``chat.postMessage`` of ``reply`` in mrkdwn (several messages when it is long), in the
        target's thread when it has one. Returns the first message's ``ts``. Raises ``PlatformError``."""
        markdown = reply.markdown
        if reply.feedback_url:
            markdown += f"\n\n[Rate this answer]({reply.feedback_url})"
        client = self.client(channel)
        thread_ts = str((target.reply_context or {}).get("thread_ts") or "")
        first: SentRef | None = None
        for text in self.render(markdown):
            kwargs: dict[str, Any] = {"channel": target.chat_id, "text": text, "mrkdwn": True, "unfurl_links": False}
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            data = self._call(client, kwargs)
            ref = SentRef(platform_message_id=str(data.get("ts") or ""), raw=data)
            first = first or ref
        return first or SentRef()

    def _call(self, client: WebClient, kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            response = client.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {status}")
            transient = status == 429 or status >= 500 or error in TRANSIENT_ERRORS
            raise PlatformError(f"Slack chat.postMessage: {error}", permanent=not transient, status=status)
        except Exception as exc:  # network failures, timeouts, a body that is not JSON
            raise PlatformError(f"Slack chat.postMessage: {type(exc).__name__}")
        return dict(response.data) if isinstance(response.data, dict) else {}


def _bot_user_id(payload: dict[str, Any]) -> str:
    authorizations = payload.get("authorizations")
    for auth in authorizations if isinstance(authorizations, list) else []:
        if isinstance(auth, dict) and auth.get("is_bot") and isinstance(auth.get("user_id"), str):
            return auth["user_id"]
    return ""


def _json_or_none(body: bytes) -> Any:
    try:
        return _storable(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return None


def _form_or_none(body: bytes) -> dict[str, list[str]] | None:
    try:
        return parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (ValueError, UnicodeDecodeError):
        return None


def _storable(value: Any) -> Any:
    """``value`` as PostgreSQL can store it: JSON escapes may smuggle in NUL characters and
    unpaired surrogates, which neither text nor jsonb columns accept."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value
