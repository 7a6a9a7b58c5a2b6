"""The admin's undelivered replies: each tenant sees its own and why; owners and admins send them
again ("retry now"), reviewers only look; the page reads in Chinese too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.channels.platforms.base import PlatformError
from apps.conversations import delivery
from apps.conversations.models import Conversation, DeliveryState, InboundMessage, Message
from tests.factories import PASSWORD, make_bot, make_channel, make_tenant, make_user

from .conftest import PLATFORM

pytestmark = pytest.mark.django_db(transaction=True)
URL = "admin:conversations_undeliveredreply_changelist"


def _undelivered(tenant, api_url: str, error: str, *, permanent: bool = True) -> Message:
    bot = make_bot(tenant, slug=f"{tenant.slug}-bot", name=f"{tenant.name} helper")
    channel = make_channel(bot, platform=PLATFORM, key=f"{tenant.slug}-fake", api_base=api_url)
    conv = Conversation.objects.create(tenant=tenant, bot=bot, channel=channel, chat_id="chat-1", user_id="u1")
    inbound = InboundMessage.objects.create(
        channel=channel, platform_message_id=f"{tenant.slug}-1", chat_id="chat-1", user_id="u1", text="hi"
    )
    reply = Message.objects.create(
        conversation=conv, inbound=inbound, role="assistant", text=f"answer for {tenant.slug}", source="model"
    )
    delivery.hand_over(reply, PlatformError(error, permanent=permanent))
    return reply


@pytest.fixture
def two_tenants(platform_api):
    make_user("root", superuser=True)  # set up (else the admin sends everyone to /setup/)
    acme, globex = make_tenant("acme", name="Acme Corp"), make_tenant("globex", name="Globex Corp")
    mine = _undelivered(acme, platform_api.url, "send failed: 403 bot removed from the chat")
    theirs = _undelivered(globex, platform_api.url, "send failed: 403 globex secret reason")
    return acme, mine, theirs


def _login(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def test_a_tenant_admin_sees_its_undelivered_replies_and_why_and_retries_them(client, two_tenants, platform_api):
    acme, mine, theirs = two_tenants
    _login(client, make_user("alice", tenant=acme, role="admin"))
    page = client.get(reverse(URL)).content.decode()
    assert "bot removed from the chat" in page and "refused by the platform" in page
    assert "globex" not in page.lower() and "Globex" not in page

    # Selecting another tenant's row (a forged POST) retries nothing of theirs.
    resp = client.post(reverse(URL), {"action": "retry_now", "_selected_action": [mine.pk, theirs.pk]}, follow=True)
    assert resp.status_code == 200 and "1 reply is being sent again." in resp.content.decode()
    assert platform_api.texts() == ["answer for acme"]
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.delivery_state == DeliveryState.DELIVERED and theirs.delivery_state == DeliveryState.FAILED
    assert "bot removed" not in client.get(reverse(URL)).content.decode()  # delivered: off the list


def test_a_reviewer_sees_the_list_but_cannot_retry(client, two_tenants, platform_api):
    acme, mine, _ = two_tenants
    _login(client, make_user("rita", tenant=acme, role="reviewer"))
    page = client.get(reverse(URL)).content.decode()
    assert "bot removed from the chat" in page and "retry_now" not in page
    client.post(reverse(URL), {"action": "retry_now", "_selected_action": [mine.pk]})
    mine.refresh_from_db()
    assert mine.delivery_state == DeliveryState.FAILED and platform_api.sent == []


def test_the_list_reads_in_chinese(client, two_tenants, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    acme, _, _ = two_tenants
    _login(client, make_user("alice", tenant=acme, role="owner"))
    page = client.get(reverse(URL)).content.decode()
    for text in ("未送达的回复", "被平台拒绝", "原因", "立即重试"):
        assert text in page, text
