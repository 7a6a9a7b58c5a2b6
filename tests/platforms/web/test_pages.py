"""/widget.js and the /chat/<key>/ page."""

from __future__ import annotations

import pytest

from tests.factories import make_bot, make_channel, make_tenant


@pytest.fixture
def channel(db):
    bot = make_bot(make_tenant("acme"), name="Helpdesk <b>", greeting="Hello")
    return make_channel(bot, platform="web", key="acme-web", allowed_origins="https://shop.example.com")


def test_widget_script_is_served_with_caching_headers(client):
    resp = client.get("/widget.js")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/javascript")
    body = resp.content.decode()
    assert "attachShadow" in body and "/api/v1/webchat/" in body
    assert "innerHTML" not in body  # model output is never parsed as HTML
    assert client.get("/widget.js", HTTP_IF_NONE_MATCH=resp["ETag"]).status_code == 304


def test_chat_page_embeds_the_widget_and_may_be_framed_by_allowed_origins(client, channel):
    resp = client.get("/chat/acme-web/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'src="/widget.js" data-channel="acme-web"' in html
    assert "Helpdesk &lt;b&gt;" in html
    assert resp["Content-Security-Policy"] == "frame-ancestors 'self' https://shop.example.com"
    assert "X-Frame-Options" not in resp


def test_chat_page_404s_for_unknown_disabled_or_non_web_channels(client, channel):
    assert client.get("/chat/nope/").status_code == 404
    make_channel(channel.bot, platform="telegram", key="acme-tg")
    assert client.get("/chat/acme-tg/").status_code == 404
    channel.enabled = False
    channel.save()
    assert client.get("/chat/acme-web/").status_code == 404


def test_webhook_view_has_no_web_platform(client, channel):
    assert client.post("/webhooks/web/acme-web/", data="{}", content_type="application/json").status_code == 404
