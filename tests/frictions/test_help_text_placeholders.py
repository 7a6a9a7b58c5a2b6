"""Friction: help texts lost their ``<platform>``/``<key>`` placeholders (the page showed
"/webhooks/// and /ws/chat//"): the browser took them for HTML tags."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from tests.factories import make_tenant, make_user

from .conftest import login

pytestmark = pytest.mark.django_db


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_channel_help_text_shows_its_placeholders(client, setup_done):
    login(client, make_user("alice", tenant=make_tenant("acme")))
    page = client.get(reverse("admin:im_channels_channel_add")).content.decode()
    text = " ".join(_visible_text(page).split())
    assert "/webhooks/<platform>/<key>/ and /ws/chat/<key>/" in text
    assert "/webhooks///" not in text


def test_setup_help_text_shows_its_placeholder(client):
    text = " ".join(_visible_text(client.get("/setup/").content.decode()).split())
    assert "/chat/<key>/" in text
