"""Review services (writes): end-user ratings, reviewer flags and corrections, knowledge from a
correction, and who may reveal personal data.

Views, admin pages and platform adapters call these and stay thin. Every function that changes a
row on a staff member's behalf also writes an audit log entry.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.bots.models import KnowledgeEntry
from apps.core import metrics
from apps.core.audit import audit_record
from apps.tenants.selectors import can_manage, can_reveal_pii, can_review

from .handoff import handoff_port
from .models import Conversation, Feedback, Message

logger = logging.getLogger(__name__)

#: Thumbs buttons (Feishu cards, Slack blocks, the web widget) land on the same 1–5 scale.
THUMB_RATINGS = {"up": 5, "down": 1}
COMMENT_MAX = 2000
CORRECTION_MAX = 20000


class ReviewError(ValueError):
    """Input a rating or review cannot accept (the message says what); views answer it with a 4xx."""


# --- end-user feedback ------------------------------------------------------------------------
def thumb_rating(thumb: str) -> int:
    """The star rating a thumbs button stands for ("up" → 5, "down" → 1). Raises ``ReviewError``."""
    try:
        return THUMB_RATINGS[thumb]
    except KeyError:
        raise ReviewError("thumb must be 'up' or 'down'")


def record_feedback(*, message: Message, rating: int, comment: str | None = None, source: str) -> Feedback:
    """Store an end user's rating of one answer, replacing an earlier one (ratings stay changeable).

    ``rating`` is 1–5 (thumbs: use ``thumb_rating``); ``source`` is ``Feedback.Source`` ("page" or
    "button"). ``comment=None`` keeps a comment given earlier (a thumbs click must not wipe what
    the user wrote on the page); a string, even empty, replaces it. Returns the Feedback row.
    Raises ``ReviewError`` for a rating out of range, an unknown source, or a message that is not
    an answer.
    """
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise ReviewError("rating must be a whole number from 1 to 5")
    if not 1 <= rating <= 5:
        raise ReviewError("rating must be from 1 to 5")
    if source not in Feedback.Source.values:
        raise ReviewError(f"unknown feedback source {source!r}")
    if message.role != Message.Role.ASSISTANT:
        raise ReviewError("only answers can be rated")
    defaults: dict[str, Any] = {"rating": rating, "source": source}
    if comment is not None:
        defaults["comment"] = comment.strip()[:COMMENT_MAX]
    feedback, created = Feedback.objects.update_or_create(message=message, defaults=defaults)
    # Explicitly here, not from a post_save signal: "two thumbs-down in a row" may pass the
    # conversation to a person (apps/conversations/handoff.py).
    handoff_port().after_rating(message=message, rating=rating)
    metrics.record_rating(
        platform=message.conversation.channel.platform, page=source == Feedback.Source.PAGE, stars=rating
    )
    logger.info(
        "feedback recorded",
        extra={"message_id": message.pk, "rating": rating, "source": source, "changed": not created},
    )
    return feedback


def record_reveal(*, user: Any, conversation: Conversation, request: Any = None) -> None:
    """Audit that ``user`` looked at a conversation unmasked. Raises ``PermissionError`` if not allowed."""
    if not can_reveal_pii(user, conversation.tenant_id):
        raise PermissionError("revealing personal data needs the conversations.reveal_pii permission")
    audit_record(
        action="conversation.reveal_pii",
        actor=user,
        tenant=conversation.tenant,
        target=f"conversation:{conversation.pk}",
        request=request,
    )


# --- reviewer writes --------------------------------------------------------------------------
def message_review(
    *, message: Message, user: Any, flagged: bool, correction: str | None = None, request: Any = None
) -> Message:
    """Flag or unflag an answer and (optionally) set the answer it should have been.

    The conversation is flagged while any of its answers is. ``correction=None`` keeps the saved
    correction. Returns the updated message. Raises ``PermissionError`` for a user who may not
    review the tenant and ``ReviewError`` for a message that is not an answer.
    """
    conv = message.conversation
    if not can_review(user, conv.tenant_id):
        raise PermissionError("you cannot review this tenant's conversations")
    if message.role != Message.Role.ASSISTANT:
        raise ReviewError("only answers can be flagged or corrected")
    fields = ["flagged"]
    message.flagged = bool(flagged)
    if correction is not None:
        message.correction = correction.strip()[:CORRECTION_MAX]
        fields.append("correction")
    with transaction.atomic():
        message.save(update_fields=fields)
        conv_flagged = conv.messages.filter(flagged=True).exists()
        Conversation.objects.filter(pk=conv.pk).update(flagged=conv_flagged)
        conv.flagged = conv_flagged
        audit_record(
            action="conversation.review",
            actor=user,
            tenant=conv.tenant,
            target=f"message:{message.pk}",
            request=request,
            flagged=message.flagged,
            corrected=bool(message.correction),
        )
    return message


def question_for(message: Message) -> str:
    """The user turn(s) an answer replied to: the user messages since the previous answer."""
    earlier = list(
        message.conversation.messages.filter(role__in=[Message.Role.USER, Message.Role.ASSISTANT])
        .filter(id__lt=message.pk)
        .order_by("-id")[:20]
    )
    asked: list[str] = []
    for turn in earlier:
        if turn.role == Message.Role.ASSISTANT:
            break
        asked.append(turn.text)
    return "\n".join(reversed(asked)).strip()


def knowledge_from_correction(*, message: Message, user: Any, request: Any = None) -> KnowledgeEntry:
    """Turn a reviewer's correction into a knowledge entry of the answer's bot: the question the user
    asked, answered by the correction from now on. Returns the new entry.

    Raises ``PermissionError`` unless the user manages the tenant, ``ReviewError`` when the answer
    has no correction or no question precedes it.
    """
    conv = message.conversation
    if not can_manage(user, conv.tenant_id):
        raise PermissionError("only the tenant's owners and admins can add knowledge entries")
    if not message.correction.strip():
        raise ReviewError("write the correct answer first")
    question = question_for(message)
    if not question:
        raise ReviewError("no user question precedes this answer")
    with transaction.atomic():
        entry = KnowledgeEntry.objects.create(bot=conv.bot, question=question[:4000], answer=message.correction)
        audit_record(
            action="knowledge.from_correction",
            actor=user,
            tenant=conv.tenant,
            target=f"knowledge:{entry.pk}",
            request=request,
            message=message.pk,
        )
    return entry
