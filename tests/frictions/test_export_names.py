"""Friction: masked and unmasked exports of conversations got the same file name."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.conversations.models import Conversation, Message
from tests.factories import make_bot, make_channel, make_tenant

from .conftest import login

pytestmark = pytest.mark.django_db


def test_masked_and_unmasked_exports_have_different_file_names(client, setup_done):
    acme = make_tenant("acme")
    channel = make_channel(make_bot(acme), platform="web", key="acme-web")
    conv = Conversation.objects.create(tenant=acme, bot=channel.bot, channel=channel, chat_id="c1", user_id="u1")
    Message.objects.create(conversation=conv, role=Message.Role.USER, text="call me at 13800138000")
    login(client, setup_done)  # a superuser may export unmasked
    names = {}
    for kind, url in (
        ("masked", reverse("admin:conversations_conversation_export", args=["csv"])),
        ("unmasked", reverse("admin:conversations_conversation_export_unmasked", args=["csv"])),
    ):
        resp = client.get(url)
        assert resp.status_code == 200, (kind, resp.status_code)
        names[kind] = resp["Content-Disposition"]
    assert names["masked"] != names["unmasked"]
    assert "unmasked" in names["unmasked"] and "unmasked" not in names["masked"]
