"""The message path in few statements, and what it must still get right: a model or knowledge edit
is used by the next message, a message written while an answer was being made stops that answer
(the database decides, not the cache), and the statement budget of an ordinary answer holds."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.bots.models import Bot, BotFallback, KnowledgeEntry
from apps.channels.platforms.base import Inbound
from apps.conversations import services
from apps.conversations.models import Conversation, InboundMessage, Message
from apps.conversations.pipeline.process import process_inbound
from apps.conversations.pipeline.storage import storage
from apps.llm.models import ModelConfig
from tests.factories import make_knowledge, make_model
from tests.fakes.llm import FakeOpenAI

from .conftest import REAL_BACKENDS, wait_for

S = InboundMessage.Status
pytestmark = pytest.mark.django_db(transaction=True)
#: PostgreSQL statements an ordinary answered message may cost on the worker (claim, user turn,
#: snapshot, store, deliver, the handoff gate's "does a person hold this sender's conversation?" —
#: and the conversation's insert for a new chat).
BUDGET = 7


def _stored(channel, message_id: str, text: str, *, user: str = "u1", chat: str = "chat-1") -> InboundMessage:
    return InboundMessage.objects.create(
        channel=channel, platform_message_id=message_id, chat_id=chat, user_id=user, text=text
    )


def _statements(inbound_id: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        process_inbound(inbound_id)
    return len(queries)


@pytest.mark.skipif(not REAL_BACKENDS, reason="the single-statement path is PostgreSQL's")
def test_an_ordinary_answer_stays_within_the_statement_budget(make_setup, platform_api, llm):
    bot, channel = make_setup()
    make_knowledge(bot, "What are your opening hours?", "9:00-17:00.")
    fallback = make_model(bot.tenant, "spare", endpoint=llm.url)
    BotFallback.objects.create(bot=bot, model=fallback, position=1)
    # The process reads the bot's knowledge entries once (and again only when they change).
    process_inbound(_stored(channel, "m-0", "good morning", chat="chat-0").pk)
    # A first message in a new chat (the conversation is created, knowledge entries are checked).
    assert _statements(_stored(channel, "m-1", "hello there").pk) <= BUDGET
    # A follow-up in the same conversation.
    assert _statements(_stored(channel, "m-2", "and another thing").pk) <= BUDGET - 1
    # A knowledge answer (the entries were read once; unchanged, they are not read again).
    assert _statements(_stored(channel, "m-3", "what are your opening hours", chat="chat-2").pk) <= BUDGET
    assert platform_api.texts() == ["Hello from the fake model."] * 3 + ["9:00-17:00."]
    assert llm.calls == 3
    assert list(InboundMessage.objects.order_by("pk").values_list("status", flat=True)) == [S.ANSWERED] * 4
    conv = Conversation.objects.get(chat_id="chat-1")
    assert list(conv.messages.order_by("created_at", "id").values_list("role", "text")) == [
        ("user", "hello there"),
        ("assistant", "Hello from the fake model."),
        ("user", "and another thing"),
        ("assistant", "Hello from the fake model."),
    ]
    assert InboundMessage.objects.filter(conversation=conv).count() == 2
    assert conv.messages.filter(role="assistant", delivered_at__isnull=True).count() == 0


def test_the_user_turn_is_dated_when_the_message_arrived(make_setup, platform_api, llm):
    _, channel = make_setup()
    row = _stored(channel, "m-1", "hello")
    time.sleep(0.05)
    process_inbound(row.pk)
    turn = Message.objects.get(role="user")
    assert turn.created_at == row.received_at and turn.inbound_id == row.pk


def test_an_edited_model_answers_the_next_message(make_setup, platform_api, llm):
    bot, channel = make_setup()
    process_inbound(_stored(channel, "m-1", "hello").pk)
    with FakeOpenAI() as other:
        other.set(text="From the new endpoint.")
        config = ModelConfig.objects.get(pk=bot.model_id)  # as the admin would: another object
        config.endpoint = other.url
        config.model = "new-model"
        config.save()
        process_inbound(_stored(channel, "m-2", "again").pk)
        assert platform_api.texts()[-1] == "From the new endpoint."
        assert other.requests[0].json()["model"] == "new-model"
        # A bot switched to another model without its updated_at changing is seen too.
        spare = make_model(bot.tenant, "spare", endpoint=llm.url)
        Bot.objects.filter(pk=bot.pk).update(model=spare)
        llm.set(text="From the spare model.")
        process_inbound(_stored(channel, "m-3", "and again").pk)
        assert platform_api.texts()[-1] == "From the spare model."
        # A disabled model is not used: the deployment default answers (no key: the built-in text).
        ModelConfig.objects.filter(pk=spare.pk).update(enabled=False)
        process_inbound(_stored(channel, "m-4", "once more").pk)
        assert "I don't have an answer to that yet" in platform_api.texts()[-1]


def test_knowledge_edits_are_used_by_the_next_message(make_setup, platform_api, llm):
    bot, channel = make_setup()
    entry = make_knowledge(bot, "Where is the office?", "Main Street 1.")
    process_inbound(_stored(channel, "m-1", "where is the office", chat="a").pk)
    assert platform_api.texts() == ["Main Street 1."]
    entry.answer = "Harbour Road 5."
    entry.save()
    process_inbound(_stored(channel, "m-2", "where is the office", chat="b").pk)
    assert platform_api.texts()[-1] == "Harbour Road 5."
    # Changed behind the model's back (no updated_at): still noticed.
    KnowledgeEntry.objects.filter(pk=entry.pk).update(enabled=False)
    process_inbound(_stored(channel, "m-3", "where is the office", chat="c").pk)
    assert platform_api.texts()[-1] == "Hello from the fake model." and llm.calls == 1
    make_knowledge(bot, "Do you ship abroad?", "Yes, worldwide.")
    process_inbound(_stored(channel, "m-4", "do you ship abroad", chat="d").pk)
    assert platform_api.texts()[-1] == "Yes, worldwide." and llm.calls == 1


def test_a_message_written_while_the_answer_was_made_stops_it(make_setup, platform_api, llm):
    """The sender writes again while the model is answering, and the cache never hears of it (the
    row is stored directly): the database's check at storing time stops the answer anyway."""
    _, channel = make_setup()
    row = _stored(channel, "m-1", "first question")
    # The model answers a while after the second message is stored (the writer waits for the model
    # call to begin, then writes): long enough for that write on a busy machine.
    llm.set(text="An answer to the first question.", delay=2.0)

    def write_again() -> None:
        try:
            wait_for(lambda: llm.calls == 1, what="the model call")
            _stored(channel, "m-2", "actually, a second question")
        finally:
            connection.close()

    writer = threading.Thread(target=write_again)
    writer.start()
    process_inbound(row.pk)
    writer.join()
    row.refresh_from_db()
    assert row.status == S.INTERRUPTED and row.reply_id is None
    assert platform_api.sent == []
    kept = Message.objects.get(role="assistant")
    assert kept.interrupted and kept.text == "An answer to the first question."
    # The newer message is answered with the whole context, the first question included.
    llm.set(text="Both answered.")
    newer = InboundMessage.objects.get(platform_message_id="m-2")
    process_inbound(newer.pk)
    assert platform_api.texts() == ["Both answered."]
    sent_turns = [m["content"] for m in llm.requests[-1].json()["messages"] if m["role"] != "system"]
    assert sent_turns == ["first question", "actually, a second question"]


def test_earlier_messages_waiting_for_their_task_are_merged_into_the_answer(make_setup, platform_api, llm):
    _, channel = make_setup()
    process_inbound(_stored(channel, "m-0", "hi").pk)
    first = _stored(channel, "m-1", "my order")
    second = _stored(channel, "m-2", "has not arrived")
    process_inbound(second.pk)  # its task ran first; the first message's task is still queued
    assert platform_api.texts() == ["Hello from the fake model."] * 2
    first.refresh_from_db()
    assert first.status == S.MERGED and first.conversation_id is not None
    sent_turns = [m["content"] for m in llm.requests[-1].json()["messages"] if m["role"] == "user"]
    assert sent_turns == ["hi", "my order", "has not arrived"]
    process_inbound(first.pk)  # the queued task: nothing left to do
    assert len(platform_api.sent) == 2 and llm.calls == 2


def test_a_resumed_message_in_a_closed_conversation_starts_a_new_one(make_setup, platform_api, llm):
    _, channel = make_setup()
    services.accept_inbound(
        channel=channel, inbounds=[Inbound(message_id="m-1", chat_id="chat-1", user_id="u1", text="hi")]
    )
    old = Conversation.objects.get()
    Conversation.objects.filter(pk=old.pk).update(status=Conversation.Status.CLOSED)
    row = _stored(channel, "m-2", "hello again")
    InboundMessage.objects.filter(pk=row.pk).update(conversation=old)  # linked before a crash
    process_inbound(row.pk)
    row.refresh_from_db()
    assert row.status == S.ANSWERED and row.conversation_id != old.pk
    assert Conversation.objects.get(pk=row.conversation_id).status == Conversation.Status.ACTIVE


def test_an_earlier_message_claimed_by_another_worker_is_in_the_answer(make_setup, platform_api, llm):
    """Two quick messages handled by two workers at once: the newer one's answer waits for the
    older one's turn (stored a moment later by the other worker) instead of answering without it."""
    _, channel = make_setup(merge_window_ms=0)
    older = _stored(channel, "m-1", "about my order")
    newer = _stored(channel, "m-2", "number 42")
    other = storage().claim(older.pk)  # another worker holds it, its turn not stored yet
    assert other is not None

    def other_worker() -> None:
        # Once this worker has claimed the newer message, the older turn comes a moment later: the
        # answer waits (up to IN_FLIGHT_WAIT_S) for it rather than answering without it.
        try:
            wait_for(lambda: InboundMessage.objects.get(pk=newer.pk).status == S.PROCESSING, what="the newer claimed")
            time.sleep(0.2)  # inside that wait, not before it
            other.conversation = storage().conversation(other)
            storage().store_user_turn(other)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    process_inbound(newer.pk)
    thread.join()
    contents = [m["content"] for m in llm.requests[0].json()["messages"] if m["role"] == "user"]
    assert contents == ["about my order", "number 42"]
