"""Signed links to the rating page of one answer: ``/feedback/<token>/``.

The token is a ``TimestampSigner`` signature (salt ``parley.feedback``) over the message id and its
tenant id, so a link cannot be altered to rate another answer or another tenant's answer, and it
expires (``max_age``) without any stored state.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing

SALT = "parley.feedback"
#: How long a link stays valid by default (seconds): 30 days.
DEFAULT_MAX_AGE = 30 * 24 * 3600


class FeedbackLinkInvalid(Exception):
    """The token was altered, is malformed, or has expired. ``expired`` tells the two apart."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def feedback_token(message: Any) -> str:
    """The signed token for an assistant ``Message`` (needs ``pk`` and ``conversation.tenant_id``)."""
    return _signer().sign(f"{message.pk}.{message.conversation.tenant_id}")


def feedback_path(message_id: int, tenant_id: int) -> str:
    """The rating page of one answer as a path (``/feedback/<token>/``), for pages on Parley itself."""
    return f"/feedback/{_signer().sign(f'{message_id}.{tenant_id}')}/"


def feedback_url(message: Any) -> str:
    """The absolute URL of the rating page for ``message`` (``PUBLIC_BASE_URL/feedback/<token>/``)."""
    return f"{settings.PUBLIC_BASE_URL}/feedback/{feedback_token(message)}/"


def feedback_token_load(token: str, max_age: float | None = DEFAULT_MAX_AGE) -> tuple[int, int]:
    """Return ``(message_id, tenant_id)`` from a token made by ``feedback_token``.

    Raises ``FeedbackLinkInvalid`` (``expired=True`` for an old but authentic token) when the token
    is tampered with, malformed or older than ``max_age`` seconds (None: never expires).
    """
    try:
        value = _signer().unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise FeedbackLinkInvalid("feedback link has expired", expired=True) from exc
    except signing.BadSignature as exc:
        raise FeedbackLinkInvalid("feedback link is not valid") from exc
    message_id, _, tenant_id = value.partition(".")
    if not (message_id.isdigit() and tenant_id.isdigit()):
        raise FeedbackLinkInvalid("feedback link is not valid")
    return int(message_id), int(tenant_id)
