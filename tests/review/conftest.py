"""Conversations with figures, for the review and feedback tests."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.conversations.models import Conversation, InboundMessage, Message
from tests.factories import make_bot, make_channel, make_model, make_tenant, make_user

PHONE = "13812345678"
EMAIL = "li.lei@example.com"


def make_conversation(channel, *, chat_id="c1", user_id="u1", user_name="Li Lei", language="en", **kw) -> Conversation:
    return Conversation.objects.create(
        tenant=channel.bot.tenant,
        bot=channel.bot,
        channel=channel,
        chat_id=chat_id,
        user_id=user_id,
        user_name=user_name,
        language=language,
        **kw,
    )


_seq = [0]


def make_turn(conv: Conversation, question: str, answer: str, *, at=None, response_ms: int = 800, **figures: Any):
    """A user message, the inbound row it came from (answered after ``response_ms``) and the answer."""
    _seq[0] += 1
    at = at or timezone.now()
    inbound = InboundMessage.objects.create(
        channel=conv.channel,
        platform_message_id=f"pm-{_seq[0]}",
        chat_id=conv.chat_id,
        user_id=conv.user_id,
        text=question,
        status=figures.pop("status", InboundMessage.Status.ANSWERED),
        conversation=conv,
    )
    InboundMessage.objects.filter(pk=inbound.pk).update(
        received_at=at, finished_at=at + timedelta(milliseconds=response_ms)
    )
    q = Message.objects.create(conversation=conv, inbound=inbound, role="user", text=question, language=conv.language)
    figures.setdefault("model_name", "gpt-test")
    figures.setdefault("source", "model")
    figures.setdefault("latency_ms", response_ms - 50)
    figures.setdefault("tokens_in", 120)
    figures.setdefault("tokens_out", 45)
    figures.setdefault("cost", Decimal("0.000330"))
    a = Message.objects.create(
        conversation=conv, inbound=inbound, role="assistant", text=answer, language=conv.language, **figures
    )
    Message.objects.filter(pk__in=[q.pk, a.pk]).update(created_at=at)
    a.refresh_from_db()
    return q, a


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 at full strength costs seconds per user on a busy machine; hashing is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db):
    """Two tenants, each with a bot, a web channel and a conversation; an admin, a reviewer and a
    PII revealer in tenant A; a superuser so the admin is set up."""
    data: dict[str, Any] = {}
    for slug in ("tenant-a", "tenant-b"):
        t = make_tenant(slug)
        model = make_model(t)
        bot = make_bot(t, slug=f"bot-{slug}", model=model)
        channel = make_channel(bot, platform="web", key=f"web-{slug}")
        conv = make_conversation(channel)
        q, a = make_turn(conv, f"My phone is {PHONE}, how do I reset my password?", f"Hi {EMAIL}, open Settings.")
        data[slug] = {"tenant": t, "bot": bot, "channel": channel, "conv": conv, "question": q, "answer": a}
    make_user("root", superuser=True)
    a = data["tenant-a"]["tenant"]
    make_user("admin-a", tenant=a, role="admin")
    make_user("reviewer-a", tenant=a, role="reviewer")
    revealer = make_user("revealer-a", tenant=a, role="reviewer")
    from django.contrib.auth.models import Permission

    revealer.user_permissions.add(Permission.objects.get(codename="reveal_pii"))
    return data
