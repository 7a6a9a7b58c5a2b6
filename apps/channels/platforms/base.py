"""The contract every IM platform adapter fulfils.

One folder per platform under ``apps/channels/platforms/<name>/`` with an ``adapter.py`` that
defines a ``PlatformAdapter`` subclass (and, for platforms with a long-connection mode, a
``connector.py``), real payload samples, and one line in ``registry.py``. Adapters never import
``apps.conversations``: they turn a ``RawRequest`` into ``Inbound`` values and replies into
platform API calls, nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.datastructures import CaseInsensitiveMapping


@dataclass
class RawRequest:
    """What an adapter reads of a platform's request: the same value whether the event came as a
    webhook (``from_http``) or over a long connection (``event``). ``headers`` are looked up
    case-insensitively; ``query`` holds the URL's query parameters (the last value of each);
    ``state`` is where an adapter keeps what ``verify`` worked out (a decrypted body) for ``parse``.
    """

    method: str = "POST"
    path: str = ""
    headers: CaseInsensitiveMapping = field(default_factory=lambda: CaseInsensitiveMapping({}))
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, CaseInsensitiveMapping):
            self.headers = CaseInsensitiveMapping(dict(self.headers))

    @classmethod
    def from_http(cls, request: HttpRequest) -> RawRequest:
        """The request a webhook view received (its body already read, within the size limit)."""
        return cls(
            method=request.method or "",
            path=request.path,
            headers=request.headers,
            query={k: request.GET.get(k, "") for k in request.GET},
            body=request.body,
        )

    @classmethod
    def event(cls, body: bytes, *, content_type: str = "application/json") -> RawRequest:
        """An event that arrived over a long connection the platform authenticated: a POST of
        ``body``, to be parsed (its signature is a webhook matter, not asked for)."""
        return cls(method="POST", headers={"Content-Type": content_type}, body=body)


@dataclass
class Inbound:
    """A normalized message from a platform."""

    message_id: str  # the id to de-duplicate on (event id or message id, per the platform)
    chat_id: str  # where replies go: the chat / conversation / group id
    user_id: str  # the sender's id on the platform
    text: str  # plain text, with the bot's own @-mention removed
    user_name: str = ""
    is_group: bool = False
    raw: dict[str, Any] = field(default_factory=dict)  # the payload (decrypted), for review and debugging
    reply_context: dict[str, Any] = field(default_factory=dict)  # what send() needs beyond chat/user ids

    def storable(self) -> Inbound:
        """This message without what PostgreSQL text and jsonb cannot hold: NUL characters
        (dropped) and lone UTF-16 surrogates from JSON escapes (replaced). Platforms never send
        either in real text; webhooks and long connections both store only this form."""
        fields = dataclasses.fields(self)
        return dataclasses.replace(self, **{f.name: storable_value(getattr(self, f.name)) for f in fields})


def storable_value(value: Any) -> Any:
    """``value`` (a parsed JSON payload or any part of one) as PostgreSQL text and jsonb columns can
    hold it: NUL characters dropped, lone UTF-16 surrogates from JSON escapes replaced."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable_value(k): storable_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_value(v) for v in value]
    return value


@dataclass
class Target:
    """Where a reply goes; built by the pipeline from the stored InboundMessage."""

    chat_id: str
    user_id: str = ""
    is_group: bool = False
    reply_context: dict[str, Any] = field(default_factory=dict)


@dataclass
class OutboundReply:
    """What the pipeline asks an adapter to deliver."""

    markdown: str
    feedback_url: str = ""
    idempotency_key: str = ""  # stable per answer; platforms that support it de-duplicate sends

    @property
    def feedback_token(self) -> str:
        """The signed token of ``feedback_url`` (``…/feedback/<token>/``), or "" when the answer
        offers no rating. Rating buttons carry it, so a click names its answer tamper-proof."""
        if not self.feedback_url:
            return ""
        return self.feedback_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


@dataclass
class SentRef:
    platform_message_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class RatingClick:
    """A click on an answer's thumbs-up / thumbs-down button, from a verified platform request.

    ``token`` is the signed feedback token the button carried (see ``OutboundReply.feedback_token``);
    ``user_ids`` are the clicker's ids on the platform (any of them may match the asker's stored id);
    ``chat_id`` is the chat the clicked message is in, when the platform says.
    """

    token: str
    thumb: str  # "up" | "down" (anything else is refused by the rating service)
    user_ids: tuple[str, ...]
    chat_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class RatingOutcome:
    """What became of a ``RatingClick``: ``status`` (200, or the 4xx a forged or refused click
    gets), ``kind`` (recorded, invalid, expired, not_yours, limited), the thumb, the answer's
    language ("zh" / "en"; "" when unknown) and, once recorded, the answer's Markdown (for
    platforms that redraw the rated message)."""

    status: int
    kind: str
    thumb: str = ""
    language: str = ""
    answer: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "recorded"


#: Button labels and click answers on platforms with inline rating buttons, per answer language.
RATING_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "up": "👍 Helpful",
        "down": "👎 Not helpful",
        "recorded": "Thanks for your feedback!",
        "recorded_up": "Thanks! You found this answer helpful.",
        "recorded_down": "Thanks! You found this answer not helpful.",
        "invalid": "This rating button does not work.",
        "expired": "This answer can no longer be rated.",
        "not_yours": "Only the person who asked can rate this answer.",
        "limited": "Too many ratings. Please try again in a few minutes.",
    },
    "zh": {
        "up": "👍 有帮助",
        "down": "👎 没帮助",
        "recorded": "感谢您的反馈！",
        "recorded_up": "谢谢！您觉得这个回答有帮助。",
        "recorded_down": "谢谢！您觉得这个回答没有帮助。",
        "invalid": "这个评价按钮无效。",
        "expired": "这个回答已不能再评价。",
        "not_yours": "只有提问的人可以评价这个回答。",
        "limited": "评价次数过多，请几分钟后再试。",
    },
}


def rating_text(language: str, key: str) -> str:
    """``RATING_TEXT`` in ``language`` (Chinese for any ``zh*``, English otherwise)."""
    return RATING_TEXT["zh" if (language or "").lower().startswith("zh") else "en"][key]


#: Values of a channel's ``rating_buttons`` credential that turn the inline buttons off.
RATING_BUTTONS_OFF = frozenset({"off", "false", "0", "no"})


def rating_buttons_enabled(channel: Any) -> bool:
    """Whether answers on ``channel`` carry thumbs buttons: on unless its ``rating_buttons``
    credential says "off" (the bot's ``feedback_links`` switch turns links and buttons off together).
    In long-connection mode clicks arrive over the connection rather than at the webhook URL: the
    buttons are on only where the platform's connector records them (``Connector.rating_clicks``),
    since a button that does nothing is worse than none."""
    if getattr(channel, "mode", "webhook") == "long_connection":
        from .registry import connector_class

        connector = connector_class(getattr(channel, "platform", ""))
        if connector is None or not connector.rating_clicks:
            return False
    value = str((getattr(channel, "credentials", None) or {}).get("rating_buttons") or "").strip().lower()
    return value not in RATING_BUTTONS_OFF


class WebhookRejected(Exception):
    """The request is refused. ``status`` is the HTTP status to answer with (never 5xx);
    ``outcome`` is the metrics label (rejected_signature, rejected)."""

    def __init__(self, status: int, reason: str, *, outcome: str = "rejected") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.outcome = outcome


class SignatureInvalid(WebhookRejected):
    def __init__(self, reason: str = "invalid signature", status: int = 401) -> None:
        super().__init__(status, reason, outcome="rejected_signature")


class MalformedRequest(WebhookRejected):
    def __init__(self, reason: str = "malformed request") -> None:
        super().__init__(400, reason)


class PlatformError(Exception):
    """Sending failed. ``permanent`` says whether retrying can help (bad credentials, a chat the bot
    cannot post to: permanent; timeouts, 5xx, 429: not)."""

    def __init__(
        self, message: str, *, permanent: bool = False, status: int | None = None, unreachable: str = ""
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        #: When no connection could be made: the address tried (scheme, host and port only — a
        #: path may carry a token), so the admin can say where Parley could not connect.
        self.unreachable = unreachable


def as_int(value: Any, default: int) -> int:
    """``int(value)``, or ``default`` for missing or malformed numbers in platform answers."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class AccessTokenCache:
    """A platform access token per channel, kept in the Django cache (Redis in production, so every
    process shares it) until shortly before it expires.

    The key includes a digest of the API base and the credentials, so editing a channel's
    credentials never reuses the old token. ``fetch`` returns ``(token, expires_in_seconds)`` and
    raises ``PlatformError``; ``margin`` is how long before expiry the token is fetched anew.
    """

    def __init__(self, platform: str, *, margin: Callable[[int], int] = lambda expires: min(300, expires // 2)):
        self.platform = platform
        self.margin = margin

    def key(self, channel: Any, *identity: str) -> str:
        return f"parley:{self.platform}:access-token:{channel.pk}:{_digest(*identity)}"

    def get(
        self, channel: Any, identity: tuple[str, ...], fetch: Callable[[], tuple[str, int]], *, refresh: bool = False
    ) -> str:
        key = self.key(channel, *identity)
        if not refresh:
            token = cache.get(key)
            if token:
                return token
        token, expires_in = fetch()
        ttl = expires_in - self.margin(expires_in)
        if ttl > 0:
            cache.set(key, token, timeout=ttl)
        return token

    def forget(self, channel: Any, identity: tuple[str, ...]) -> None:
        """Drop a token the platform said is invalid or expired."""
        cache.delete(self.key(channel, *identity))


class PlatformAdapter:
    platform: ClassVar[str] = ""
    #: Default API base (scheme + host); a channel's ``api_base`` replaces it.
    default_api_base: ClassVar[str] = ""
    #: Credential keys this platform's channels use (shown and validated in the admin and in ``apply``).
    credential_keys: ClassVar[tuple[str, ...]] = ()
    #: Keys that must be present for the channel to work.
    required_credentials: ClassVar[tuple[str, ...]] = ()

    def api_base(self, channel: Any) -> str:
        return (channel.api_base or self.default_api_base).rstrip("/")

    def handshake(self, request: RawRequest, channel: Any) -> HttpResponse | None:
        """Answer the platform's URL verification (challenge / echostr), or None when the request
        is not a handshake. May raise ``WebhookRejected``."""
        return None

    def verify(self, request: RawRequest, channel: Any) -> None:
        """Raise ``WebhookRejected`` unless the request is authentic and fresh. Works on the raw body."""
        raise NotImplementedError

    def parse(self, request: RawRequest, channel: Any) -> list[Inbound]:
        """Return the messages in a verified request; [] for events deliberately ignored.
        Raises ``MalformedRequest`` for bodies that cannot be understood."""
        raise NotImplementedError

    def ack(self, request: RawRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        """The response that tells the platform the request was received."""
        return JsonResponse({"ok": True})

    def rating_click(self, request: RawRequest, channel: Any) -> RatingClick | None:
        """The thumbs-button click a verified request carries, or None (the default) when it is not
        one: the request then goes on to ``parse``. Raises ``MalformedRequest`` for a click whose
        body cannot be understood. A click is never stored as a message and never reaches a model."""
        return None

    def rating_response(
        self, request: RawRequest, channel: Any, click: RatingClick, outcome: RatingOutcome
    ) -> HttpResponse:
        """The answer to a rating click (the platform's own shape: a toast, an updated message…).
        Called only when ``rating_click`` returned a click."""
        return JsonResponse({"ok": outcome.ok, "result": outcome.kind}, status=outcome.status)

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """Deliver a reply through the platform's API. Raises ``PlatformError``."""
        raise NotImplementedError

    def token_sink(self, channel: Any, target: Target, *, reply_ref: str) -> Callable[[str], None] | None:
        """A callable that receives answer text as it streams from the model, for platforms that show
        answers as they are written. The default: a ``streaming.MessageStream`` (a message sent at
        the first piece and edited as the answer grows) when ``stream_interval`` gives an interval,
        else None — the platform gets the finished answer only."""
        interval = self.stream_interval(channel, target)
        if interval is None:
            return None
        from .streaming import MessageStream

        return MessageStream(self, channel, target, interval=interval)

    # Streaming by message updates (``streaming.py``): a platform that can update a sent message
    # gives an interval and the four methods below.

    def stream_interval(self, channel: Any, target: Target) -> float | None:
        """Seconds between updates of a streamed answer in this chat (within the platform's rate
        limits), or None when answers cannot be streamed there (the default)."""
        return None

    def stream_start(self, channel: Any, target: Target, markdown: str) -> Any:
        """Send the beginning of an answer as a new message; return what an update needs (its id).
        Raises ``PlatformError``."""
        raise NotImplementedError

    def stream_update(self, channel: Any, target: Target, handle: Any, markdown: str) -> None:
        """Replace the streamed message's text with ``markdown`` (the answer so far). Raises
        ``PlatformError``."""
        raise NotImplementedError

    def stream_finish(self, channel: Any, target: Target, handle: Any, reply: OutboundReply) -> SentRef:
        """Replace the streamed message with the finished ``reply`` as ``send`` would deliver it
        (rating link and buttons included; more messages when it is too long for one). Raises
        ``PlatformError``."""
        raise NotImplementedError

    def stream_abandon(self, channel: Any, target: Target, handle: Any) -> None:
        """Remove a streamed message that will not be finished, where the platform allows."""
        return None

    def status_sink(self, channel: Any, target: Target) -> Callable[[str], None] | None:
        """A callable that shows a short passing status while an answer is being made ("Calling
        Create ticket…"), for platforms that can (the web chat). None: nothing is shown."""
        return None

    def render(self, markdown: str) -> Any:
        """The platform's own dialect of ``markdown`` (within its length limits)."""
        return markdown

    def send_test_message(self, channel: Any, target: Target) -> SentRef:
        """Used by the admin's "send a test message" action."""
        return self.send(channel, target, OutboundReply(markdown="**Parley** test message ✅"))
