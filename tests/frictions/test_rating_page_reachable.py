"""Friction: the end user's rating page could not be reached from the product, only by building a
link in a shell. The transcript links each answer's rating page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.conversations.models import Conversation, Message
from tests.factories import make_bot, make_channel, make_tenant, make_user

from .conftest import login

pytestmark = pytest.mark.django_db


def test_transcript_links_the_answers_rating_page_which_opens_for_the_end_user(client, setup_done):
    acme = make_tenant("acme")
    channel = make_channel(make_bot(acme), platform="web", key="acme-web")
    conv = Conversation.objects.create(tenant=acme, bot=channel.bot, channel=channel, chat_id="c1", user_id="u1")
    Message.objects.create(conversation=conv, role=Message.Role.USER, text="Opening hours?")
    Message.objects.create(conversation=conv, role=Message.Role.ASSISTANT, text="9 to 5.", source="knowledge")
    login(client, make_user("alice", tenant=acme))
    page = client.get(reverse("admin:conversations_conversation_change", args=[conv.pk])).content.decode()
    links = re.findall(r'href="([^"]+)"[^>]*data-testid="rating-link"', page)
    assert len(links) == 1, "the answer has no link to its rating page"
    # The link works for the end user, who is not signed in.
    rating = Client().get(links[0].replace("http://127.0.0.1:8000", ""))
    assert rating.status_code == 200
    assert "9 to 5." in rating.content.decode()
