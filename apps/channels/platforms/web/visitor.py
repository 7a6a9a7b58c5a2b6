"""Web-chat visitors: who is on a socket, and the signed token that says so.

A visitor gets a token from ``POST /api/v1/webchat/<key>/token`` (``views.token``) and presents it
when opening the socket (``consumer``). The token names the channel, the visitor and the
conversation; nothing about a visitor is stored until they write.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token

HEX32_RE = re.compile(r"^[0-9a-f]{32}$")


def token_lifetime() -> timedelta:
    """How long a visitor token opens sockets (``WEBCHAT_TOKEN_SECONDS``, default 12 h)."""
    return timedelta(seconds=settings.WEBCHAT_TOKEN_SECONDS)


def refresh_window() -> timedelta:
    """How long after expiry a token may still be exchanged for a new one of the same visitor and
    conversation (``WEBCHAT_REFRESH_SECONDS``, default 30 days): a returning visitor keeps the chat."""
    return timedelta(seconds=settings.WEBCHAT_REFRESH_SECONDS)


class InvalidVisitorToken(Exception):
    """The token is missing, altered, expired, of another type, or for another channel."""


class VisitorToken(Token):
    """A simplejwt token (HS256 with the project's signing key) naming a web-chat visitor.

    Claims: ``token_type`` "webchat" (so it is never accepted as an API access token, nor an
    access token as this), ``ch`` channel key, ``vid`` visitor id, ``cid`` conversation (chat) id.
    """

    token_type = "webchat"
    lifetime = timedelta(hours=12)
    #: Extra time past ``exp`` that still verifies; only set on the refresh path.
    grace = timedelta(0)

    def get_token_backend(self) -> TokenBackend:
        backend = super().get_token_backend()
        if not self.grace:
            return backend
        return TokenBackend(
            backend.algorithm,
            backend.signing_key,
            backend.verifying_key,
            backend.audience,
            backend.issuer,
            leeway=backend.get_leeway() + self.grace,
            json_encoder=backend.json_encoder,
        )

    def check_exp(self, claim: str = "exp", current_time: Any = None) -> None:
        super().check_exp(claim, (current_time or self.current_time) - self.grace)


class _RefreshableToken(VisitorToken):
    @property
    def grace(self) -> timedelta:  # type: ignore[override]
        return refresh_window()


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is on a socket: the channel key, the visitor id and the conversation (chat) id."""

    channel_key: str
    visitor_id: str
    chat_id: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    visitor: Visitor
    expires_at: int  # Unix time
    continued: bool  # True when an earlier token's visitor and conversation were kept


def _visitor_from(token: Token, channel_key: str) -> Visitor:
    vid, cid, key = token.get("vid", ""), token.get("cid", ""), token.get("ch", "")
    if key != channel_key or not HEX32_RE.match(str(vid)) or not HEX32_RE.match(str(cid)):
        raise InvalidVisitorToken("token is not for this chat")
    return Visitor(channel_key=key, visitor_id=vid, chat_id=cid)


def visitor_token_verify(*, channel_key: str, token: str) -> Visitor:
    """The visitor a current (unexpired) token names. Raises ``InvalidVisitorToken``."""
    if not token:
        raise InvalidVisitorToken("no token")
    try:
        parsed = VisitorToken(token)  # type: ignore[arg-type]
    except TokenError as exc:
        raise InvalidVisitorToken(str(exc)) from exc
    return _visitor_from(parsed, channel_key)


def visitor_token_issue(*, channel: Any, previous: str = "", new_conversation: bool = False) -> IssuedToken:
    """A fresh token for ``channel``. When ``previous`` is an authentic token of this channel that
    expired less than ``refresh_window()`` ago (or has not expired), the new token keeps its visitor
    id — and its conversation id unless ``new_conversation``. Anything else in ``previous`` is
    ignored and a new visitor is made. Never raises for bad input."""
    visitor: Visitor | None = None
    if previous:
        try:
            visitor = _visitor_from(_RefreshableToken(previous), channel.key)  # type: ignore[arg-type]
        except (TokenError, InvalidVisitorToken):
            visitor = None
    continued = visitor is not None and not new_conversation
    token = VisitorToken()
    token.set_exp(lifetime=token_lifetime())
    token["ch"] = channel.key
    token["vid"] = visitor.visitor_id if visitor else uuid.uuid4().hex
    token["cid"] = visitor.chat_id if continued and visitor else uuid.uuid4().hex
    return IssuedToken(
        token=str(token),
        visitor=Visitor(channel_key=channel.key, visitor_id=token["vid"], chat_id=token["cid"]),
        expires_at=int(token["exp"]),
        continued=continued,
    )
