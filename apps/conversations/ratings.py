"""End-user ratings that arrive with a signed feedback token: the public feedback page and the
thumbs buttons on Feishu cards, Slack messages and Telegram inline keyboards.

Both find the answer the same way (``feedback_answer_load``), share the rate-limit counters
(``rating_limited``), and store through ``review.record_feedback`` — one rating per answer,
changeable, on the 1–5 scale (thumbs: up = 5, down = 1), counted there in ``parley_ratings_total``.
The web chat's thumbs reach ``record_feedback`` through the socket, which already knows its visitor.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings

from apps.channels.conversation_port import AnswerNotFound
from apps.channels.platforms.base import RatingClick, RatingOutcome
from apps.core import ratelimit
from apps.core.language import detect_language

from .feedback_links import FeedbackLinkInvalid, feedback_token_load
from .models import Feedback, Message
from .review import ReviewError, record_feedback, thumb_rating

logger = logging.getLogger(__name__)

# (limit, window seconds). A person rates a handful of answers; a click war is refused early.
POST_LIMIT_PER_TOKEN = (10, 600)
POST_LIMIT_PER_IP = (30, 600)
CLICK_LIMIT_PER_USER = (30, 600)


def token_key(token: str) -> str:
    """A short digest of ``token`` for cache keys (which never hold the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def rating_limited(scope: str, subject: str, limit: tuple[int, int]) -> bool:
    """Count one attempt of ``subject`` against ``limit`` (count, seconds) in the shared cache;
    True when it is over the limit."""
    return not ratelimit.hit(f"feedback:{scope}", subject, limit=limit[0], window_seconds=limit[1]).allowed


def feedback_answer_load(token: str, *, channel: Any = None) -> Message:
    """The answer a feedback token is bound to (with its conversation, bot, inbound message and
    feedback). With ``channel``, only an answer given on that channel.

    Raises ``FeedbackLinkInvalid`` (``expired=True`` for an old but authentic token) for a bad,
    expired or mismatched token: another tenant's or another channel's answer, a deleted answer,
    a user turn.
    """
    max_age = settings.FEEDBACK_LINK_MAX_AGE
    message_id, tenant_id = feedback_token_load(token, max_age=max_age)
    answers = Message.objects.select_related(
        "conversation", "conversation__bot", "conversation__channel", "inbound", "feedback"
    ).filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__tenant_id=tenant_id)
    if channel is not None:
        answers = answers.filter(conversation__channel=channel)
    message = answers.first()
    if message is None:
        raise FeedbackLinkInvalid("no such answer")
    return message


def asker_of(message: Message) -> str:
    """The platform user id of the person an answer replied to ("" when no longer known)."""
    inbound = message.inbound
    if inbound is not None and inbound.user_id:
        return inbound.user_id
    return message.conversation.user_id


def button_rating_record(*, channel: Any, click: RatingClick) -> RatingOutcome:
    """Store a thumbs-button click from an IM platform as the answer's rating (source "button").

    Only the person who asked may rate the answer (in group chats too); when the asker is no longer
    known, anyone who can click in the same chat may. Clicking the other thumb changes the rating;
    a comment left on the feedback page is kept. Never raises for bad input: the outcome says
    what happened — 400 ``invalid`` (altered or unknown token, another channel's or tenant's
    answer, a thumb other than up/down), 410 ``expired``, 403 ``not_yours`` (another person, or
    another chat), 429 ``limited``, 200 ``recorded``.
    """
    try:
        rating = thumb_rating(click.thumb)
    except ReviewError:
        return RatingOutcome(400, "invalid")
    try:
        message = feedback_answer_load(click.token, channel=channel)
    except FeedbackLinkInvalid as exc:
        return RatingOutcome(410, "expired", click.thumb) if exc.expired else RatingOutcome(400, "invalid")
    conv = message.conversation
    language = message.language or conv.language or detect_language(message.text)
    asker = asker_of(message)
    other_chat = bool(click.chat_id) and click.chat_id != conv.chat_id
    if other_chat or (asker and asker not in click.user_ids):
        logger.info("rating refused: not the asker", extra={"message_id": message.pk, "other_chat": other_chat})
        return RatingOutcome(403, "not_yours", click.thumb, language)
    clicker = click.user_ids[0] if click.user_ids else ""
    if rating_limited("click-user", f"{channel.pk}:{clicker}", CLICK_LIMIT_PER_USER) or rating_limited(
        "post-token", token_key(click.token), POST_LIMIT_PER_TOKEN
    ):
        return RatingOutcome(429, "limited", click.thumb, language)
    record_feedback(message=message, rating=rating, source=Feedback.Source.BUTTON)
    return RatingOutcome(200, "recorded", click.thumb, language, answer=message.text)


def chat_rating_record(*, channel: Any, chat_id: str, user_id: str, message_id: int, thumb: str) -> Feedback:
    """Store a thumbs rating (up = 5, down = 1, source "button") that a person gave in their own chat
    (the web chat's thumbs) on one of the answers they were given, replacing an earlier rating of it.
    Raises ``ValueError`` for a thumb other than "up"/"down" and ``AnswerNotFound`` for an answer
    that is not one of this person's in this chat."""
    try:
        rating = thumb_rating(thumb)
    except ReviewError as exc:
        raise ValueError("rating must be 'up' or 'down'") from exc
    message = Message.objects.filter(
        pk=message_id,
        role=Message.Role.ASSISTANT,
        conversation__channel=channel,
        conversation__chat_id=chat_id,
        conversation__user_id=user_id,
    ).first()
    if message is None:
        raise AnswerNotFound("unknown message")
    return record_feedback(message=message, rating=rating, source=Feedback.Source.BUTTON)
