"""The contract every IM platform adapter fulfils.

One folder per platform under ``apps/channels/platforms/<name>/`` with an ``adapter.py`` that
defines a ``PlatformAdapter`` subclass, real payload samples beside its tests, and one line in
``registry.py``. Adapters never import ``apps.conversations``: they turn HTTP into ``Inbound``
values and replies into platform API calls, nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse


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


@dataclass
class SentRef:
    platform_message_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


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

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


API_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def api_request(
    platform: str,
    method: str,
    url: str,
    *,
    json: Any = None,
    params: dict | None = None,
    headers: dict | None = None,
    timeout: httpx.Timeout = API_TIMEOUT,
) -> tuple[int, dict]:
    """One call to a platform's JSON API: ``(HTTP status, JSON object or {})``.

    Network failures raise ``PlatformError`` (retryable) naming only the exception type: platform
    URLs may carry an access token, a secret or a session credential, which must not reach logs.
    """
    try:
        with httpx.Client(timeout=timeout) as client:
            resp = client.request(method, url, json=json, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise PlatformError(f"{platform}: {type(exc).__name__} calling the API") from exc
    try:
        data = resp.json()
    except ValueError:
        data = {}
    return resp.status_code, data if isinstance(data, dict) else {}


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

    def handshake(self, request: HttpRequest, channel: Any) -> HttpResponse | None:
        """Answer the platform's URL verification (challenge / echostr), or None when the request
        is not a handshake. May raise ``WebhookRejected``."""
        return None

    def verify(self, request: HttpRequest, channel: Any) -> None:
        """Raise ``WebhookRejected`` unless the request is authentic and fresh. Works on the raw body."""
        raise NotImplementedError

    def parse(self, request: HttpRequest, channel: Any) -> list[Inbound]:
        """Return the messages in a verified request; [] for events deliberately ignored.
        Raises ``MalformedRequest`` for bodies that cannot be understood."""
        raise NotImplementedError

    def ack(self, request: HttpRequest, channel: Any, inbounds: list[Inbound]) -> HttpResponse:
        """The response that tells the platform the request was received."""
        return JsonResponse({"ok": True})

    def send(self, channel: Any, target: Target, reply: OutboundReply) -> SentRef:
        """Deliver a reply through the platform's API. Raises ``PlatformError``."""
        raise NotImplementedError

    def token_sink(self, channel: Any, target: Target, *, reply_ref: str) -> Callable[[str], None] | None:
        """A callable that receives answer text as it streams from the model, for platforms that show
        answers as they are written (the web chat). None: the platform gets the finished answer only."""
        return None

    def render(self, markdown: str) -> Any:
        """The platform's own dialect of ``markdown`` (within its length limits)."""
        return markdown

    def send_test_message(self, channel: Any, target: Target) -> SentRef:
        """Used by the admin's "send a test message" action."""
        return self.send(channel, target, OutboundReply(markdown="**Parley** test message ✅"))
