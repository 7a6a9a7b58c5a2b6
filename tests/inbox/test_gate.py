"""The handoff gate in the message pipeline, end to end through the fake Feishu API: /human and the
configured phrases put the conversation in the queue and the user is told; the bot stays silent
while a person holds it; hand-back (by the agent or by silence) resumes the bot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from apps.conversations.models import InboundMessage, Message
from apps.inbox import services
from apps.inbox.models import Handoff
from tests.factories import make_model
from tests.fakes.llm import FakeOpenAI

from .conftest import ANSWER, QUESTION, feishu_sends, user_writes
from .test_inbox import socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_human_command_queues_a_feishu_conversation_and_the_user_is_told(client, feishu, fake_server):
    user_writes(client, "ev-1", QUESTION)
    user_writes(client, "ev-2", "/human")
    handoff = Handoff.objects.get()
    assert handoff.state == "waiting" and handoff.reason == "command"
    assert handoff.summary == QUESTION  # what the user asked, not the command
    told = feishu_sends(fake_server)[-1]
    assert told["path"] == "/open-apis/im/v1/messages/om_ev-2/reply"
    assert "asked a colleague to take over" in told["text"] and "Mon–Fri, 09:00–18:00" in told["text"]
    assert InboundMessage.objects.get(platform_message_id="ev-2").status == "answered"


def test_a_chinese_phrase_is_answered_in_chinese(client, feishu, fake_server):
    user_writes(client, "ev-1", "转人工")
    assert Handoff.objects.get().reason == "phrase"
    assert "已为你转接人工客服" in feishu_sends(fake_server)[-1]["text"]


def test_the_bot_says_nothing_while_a_person_holds_it(client, feishu, fake_server, agents):
    user_writes(client, "ev-1", "/human")
    handoff = Handoff.objects.get()
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    sent = len(feishu_sends(fake_server))
    user_writes(client, "ev-2", QUESTION)  # a question the bot knows the answer to
    user_writes(client, "ev-3", "/help")  # commands too: the person answers now
    assert len(feishu_sends(fake_server)) == sent
    assert list(InboundMessage.objects.filter(status="held").values_list("platform_message_id", flat=True)) == [
        "ev-3",
        "ev-2",
    ]
    assert [m.text for m in Message.objects.filter(role="user").order_by("pk")][-2:] == [QUESTION, "/help"]


def test_the_agents_inbox_hears_the_user_live(client, feishu, agents):
    user_writes(client, "ev-1", "/human")
    handoff = Handoff.objects.get()
    ann = socket(agents["ann"])

    async def scenario():
        assert (await ann.connect())[0]
        await sync_to_async(user_writes)(client, "ev-2", "Are you there?")
        event = await ann.receive_json_from()
        assert event == {"type": "event", "kind": "message", "handoff": handoff.pk, "state": "waiting"}
        await ann.disconnect()

    async_to_sync(scenario)()


def test_asking_again_while_waiting_gets_a_short_answer(client, feishu, fake_server):
    user_writes(client, "ev-1", "/human")
    user_writes(client, "ev-2", "/human")
    assert Handoff.objects.count() == 1
    assert "has been asked already" in feishu_sends(fake_server)[-1]["text"]


@pytest.fixture
def model(feishu):
    """The bot's model: a fake OpenAI-compatible server answering "Bot again."."""
    bot, _ = feishu
    with FakeOpenAI() as fake:
        fake.set(text="Bot again.")
        bot.model = make_model(bot.tenant, endpoint=fake.url, timeout_s=10)
        bot.save()
        yield fake


def test_hand_back_resumes_the_bot(client, feishu, fake_server, agents, model):
    user_writes(client, "ev-1", "/human")
    handoff = Handoff.objects.get()
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    user_writes(client, "ev-2", "My parcel is late.")
    services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="Sorted!")
    services.handoff_resolve(handoff_id=handoff.pk, user=agents["ann"])
    calls = model.calls
    user_writes(client, "ev-3", "And when do you open tomorrow?")
    assert feishu_sends(fake_server)[-1]["text"] == "Bot again."
    # The model saw the held turn and what the person said (both part of the context).
    assert model.calls == calls + 1
    contents = [m["content"] for m in model.requests[-1].json()["messages"]]
    assert contents[-4:-2] == ["My parcel is late.", "Sorted!"]


def test_a_timeout_hands_back_and_the_bot_answers_again(client, feishu, fake_server, model, agents):
    user_writes(client, "ev-1", "/human")
    services.handoff_claim(handoff_id=Handoff.objects.get().pk, user=agents["ann"])  # then nobody wrote
    assert services.handoffs_sweep(now=timezone.now() + timedelta(minutes=31)) == 1
    assert "quiet for a while" in feishu_sends(fake_server)[-1]["text"]
    user_writes(client, "ev-2", QUESTION)
    assert feishu_sends(fake_server)[-1]["text"] in (ANSWER, "Bot again.")  # the bot, from knowledge or its model
    assert Handoff.objects.get().ended_by == "timeout"


def test_the_handoff_follows_the_user_into_a_new_conversation(client, feishu, fake_server, agents):
    """The bot's idle timeout closed the conversation while the user waited overnight: their next
    message starts a new one, and the person still holds it."""
    from apps.conversations.models import Conversation

    user_writes(client, "ev-1", "/human")
    Conversation.objects.update(last_activity_at=timezone.now() - timedelta(days=1))
    sent = len(feishu_sends(fake_server))
    user_writes(client, "ev-2", QUESTION)
    assert len(feishu_sends(fake_server)) == sent  # held: the bot said nothing
    new = Conversation.objects.get(status="active")
    assert Handoff.objects.get().conversation == new
