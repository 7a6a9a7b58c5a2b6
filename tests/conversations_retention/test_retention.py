import pytest
from django.utils import timezone

from apps.conversations.models import Conversation, InboundMessage, Message
from apps.conversations.retention import retention_purge
from apps.core.models import AuditLog
from tests.factories import make_bot, make_channel

pytestmark = pytest.mark.django_db


def _conv(bot, channel, chat, days_ago):
    conv = Conversation.objects.create(tenant=bot.tenant, bot=bot, channel=channel, chat_id=chat, user_id="u")
    Message.objects.create(conversation=conv, role="user", text="hello")
    Conversation.objects.filter(pk=conv.pk).update(last_activity_at=timezone.now() - timezone.timedelta(days=days_ago))
    inbound = InboundMessage.objects.create(
        channel=channel, platform_message_id=chat, chat_id=chat, text="hello", status="answered"
    )
    InboundMessage.objects.filter(pk=inbound.pk).update(received_at=timezone.now() - timezone.timedelta(days=days_ago))
    return conv


def test_old_conversations_go_recent_ones_and_keep_forever_bots_stay(tenant):
    short = make_bot(tenant, slug="short", retention_days=30)
    forever = make_bot(tenant, slug="forever", retention_days=0)
    ch_short = make_channel(short, platform="web", key="short-web")
    ch_forever = make_channel(forever, platform="web", key="forever-web")
    old = _conv(short, ch_short, "old", 31)
    recent = _conv(short, ch_short, "recent", 29)
    ancient = _conv(forever, ch_forever, "ancient", 3000)

    result = retention_purge()

    assert result.conversations == 1 and result.inbound == 1
    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert not Message.objects.filter(conversation_id=old.pk).exists()
    assert Conversation.objects.filter(pk__in=[recent.pk, ancient.pk]).count() == 2
    assert list(InboundMessage.objects.order_by("chat_id").values_list("chat_id", flat=True)) == ["ancient", "recent"]
    assert AuditLog.objects.filter(action="retention.purge", target="short").exists()


def test_unfinished_inbound_messages_are_never_purged(tenant):
    bot = make_bot(tenant, slug="b", retention_days=1)
    channel = make_channel(bot, platform="web", key="b-web")
    row = InboundMessage.objects.create(channel=channel, platform_message_id="m", chat_id="c", status="received")
    InboundMessage.objects.filter(pk=row.pk).update(received_at=timezone.now() - timezone.timedelta(days=5))
    retention_purge()
    assert InboundMessage.objects.filter(pk=row.pk).exists()
