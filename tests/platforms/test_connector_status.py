"""The admin shows whether a long-connection channel is actually connected, by which process, and
why not when it is not — read from what the holding process publishes, against a fake Slack."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from apps.channels.connectors.supervisor import Options
from apps.channels.models import Channel
from tests.factories import make_channel, make_user
from tests.fakes.connectors import wait_until
from tests.platforms.test_connectors import SLACK_APP_TOKEN, SLACK_BOT_TOKEN, slack_channel, slack_fake, supervisor

#: ``slack_fake`` is a fixture: imported so the tests here can ask for it by name.
__all__ = ["slack_fake"]

FAST = Options(poll_seconds=0.2, lock_ttl=2.0, backoff_base=0.05, backoff_max=0.3)


@pytest.fixture
def admin_client(client, db):
    client.force_login(make_user("root", superuser=True))
    return client


def change_page(client, channel: Channel) -> str:
    resp = client.get(reverse("admin:im_channels_channel_change", args=[channel.pk]))
    assert resp.status_code == 200
    return html.unescape(resp.content.decode())


def list_page(client) -> str:
    resp = client.get(reverse("admin:im_channels_channel_changelist"))
    assert resp.status_code == 200
    return html.unescape(resp.content.decode())


@pytest.mark.django_db(transaction=True)
def test_admin_shows_connected_then_not_held_once_the_process_stops(admin_client, answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake, enabled=True)
    assert "Not connected: no process holds this channel" in change_page(admin_client, channel)
    with supervisor(FAST) as sup:
        wait_until(lambda: "Connected since" in change_page(admin_client, channel), 20, "the connected state")
        assert f"(process {sup.holder})" in change_page(admin_client, channel)
        assert "Connected since" in list_page(admin_client)
    # A clean stop withdraws the state at once (a dead process's expires with its lock).
    assert "Not connected: no process holds this channel" in change_page(admin_client, channel)


@pytest.mark.django_db(transaction=True)
def test_admin_shows_why_a_channel_keeps_reconnecting(admin_client, answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake, enabled=True)
    channel.credentials = {"app_token": "xapp-1-wrong", "bot_token": SLACK_BOT_TOKEN}
    channel.save()
    with supervisor(FAST):

        def reconnecting() -> str:
            page = change_page(admin_client, channel)
            return page if "Reconnecting since" in page else ""

        page = wait_until(reconnecting, 20, "the reconnecting state")
        assert "invalid_auth" in page  # Slack's error code: what the operator must fix
        assert "xapp-1-wrong" not in page  # never the token
        channel.credentials = {"app_token": SLACK_APP_TOKEN, "bot_token": SLACK_BOT_TOKEN}
        channel.save()
        wait_until(lambda: "Connected since" in change_page(admin_client, channel), 20, "connected with the new token")


@pytest.mark.django_db
def test_admin_explains_disabled_and_webhook_channels(admin_client, bot):
    disabled = make_channel(bot, platform="slack", key="lc-off", mode="long_connection", enabled=False)
    assert "Not connected: the channel is disabled." in change_page(admin_client, disabled)
    hook = make_channel(bot, platform="slack", key="hook", credentials={"signing_secret": "s", "bot_token": "b"})
    assert "Not used: the platform calls the webhook URL." in change_page(admin_client, hook)
