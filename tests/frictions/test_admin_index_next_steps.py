"""Friction: after setup the admin index gave no pointer to the chat page or what to do next."""

from __future__ import annotations

import pytest

from apps.setup.services import setup_token

pytestmark = pytest.mark.django_db


def test_setup_ends_on_next_steps_and_the_home_page_keeps_pointing_to_them(client):
    resp = client.post(
        "/setup/",
        {
            "setup_token": setup_token(),
            "username": "owner",
            "email": "",
            "password1": "a-long-unusual-passphrase-42",
            "password2": "a-long-unusual-passphrase-42",
            "tenant_name": "ACME",
            "tenant_slug": "acme",
            "provider": "builtin",
            "bot_name": "Helpdesk",
            "channel_key": "acme-web",
        },
        follow=True,
    )
    page = resp.content.decode()
    assert resp.redirect_chain[-1][0] == "/admin/start/getting-started/"
    # The chat page, with a link that opens it, is the first thing to do.
    assert 'href="http://127.0.0.1:8000/chat/acme-web/"' in page or "/chat/acme-web/" in page
    home = client.get("/admin/").content.decode()
    assert 'data-testid="start-card"' in home
    assert "/admin/start/getting-started/" in home
    assert "/chat/acme-web/" in home
