"""Friction: "Send a test message" said "the platform refused" when it could not even connect, and
did not name the URL it tried. Now it says it could not connect and names the address (never the
path, which may carry a token)."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse

from tests.factories import make_bot, make_channel, make_tenant, make_user

from .conftest import login

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_unreachable_platform_is_named_and_not_called_a_refusal(client, setup_done):
    acme = make_tenant("acme")
    port = _closed_port()
    channel = make_channel(
        make_bot(acme),
        platform="feishu",
        key="acme-feishu",
        api_base=f"http://127.0.0.1:{port}",
        credentials={"app_id": "cli_1", "app_secret": "s3cret-app", "verification_token": "v"},
    )
    login(client, make_user("alice", tenant=acme))
    resp = client.post(
        reverse("admin:im_channels_channel_send_test", args=[channel.pk]), {"chat_id": "oc_1"}, follow=True
    )
    said = [(m.level_tag, str(m)) for m in resp.context["messages"]]
    assert len(said) == 1 and said[0][0] == "error", said
    text = said[0][1]
    assert "refused the message" not in text
    assert "could not connect" in text.lower() and f"http://127.0.0.1:{port}" in text, text
    assert "s3cret-app" not in text
