"""Friction: transcripts showed raw Markdown and put the user and the bot on the opposite sides
from the web chat (there the visitor is on the right, the bot on the left)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from apps.conversations.models import Conversation, Message
from tests.factories import make_bot, make_channel, make_tenant, make_user

from .conftest import login

pytestmark = pytest.mark.django_db
STATIC = Path(__file__).resolve().parents[2] / "static" / "parley"


def _side(css: str, selector: str) -> str:
    rule = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", css)
    assert rule, selector
    value = re.search(r"(?:align-self|align-items)\s*:\s*([\w-]+)", rule.group(1)).group(1)
    return {"flex-end": "right", "flex-start": "left"}[value]


def test_transcript_renders_markdown_with_user_and_bot_on_the_widgets_sides(client, setup_done):
    acme = make_tenant("acme")
    channel = make_channel(make_bot(acme), platform="web", key="acme-web")
    conv = Conversation.objects.create(tenant=acme, bot=channel.bot, channel=channel, chat_id="c1", user_id="u1")
    Message.objects.create(conversation=conv, role=Message.Role.USER, text="When are you open?")
    Message.objects.create(conversation=conv, role=Message.Role.ASSISTANT, text="We are **open**:\n\n- Mon\n- Tue")
    login(client, make_user("alice", tenant=acme))
    page = client.get(reverse("admin:conversations_conversation_change", args=[conv.pk])).content.decode()
    assert "<strong>open</strong>" in page and "**open**" not in page
    assert page.count("<li>Mon</li>") == 1

    # The sides, as each page's stylesheet places them.
    widget = (STATIC / "widget.js").read_text().replace('" +\n    "', "")
    transcript = (STATIC / "review-admin.css").read_text()
    assert 'class="turn user' in page and 'class="turn assistant' in page
    assert _side(widget, ".msg.user") == _side(transcript, ".chat .turn.user") == "right"
    assert _side(widget, ".msg.bot") == _side(transcript, ".chat .turn.assistant") == "left"
