"""The pipeline's storage contract: the same cases against every implementation that can run here.

``OrmStorage`` (the portable ORM) runs on every database; ``PostgresStorage`` (single statements)
runs when the test database is PostgreSQL. What a user would notice is the same either way: which
message is worked on by whom, which turns a conversation holds and in which order, which answer is
stored and finished — and that a worker that lost its claim changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.bots.models import BotFallback
from apps.channels.platforms.base import SentRef
from apps.conversations.models import Conversation, InboundMessage, Message
from apps.conversations.pipeline.storage import MAX_ATTEMPTS
from apps.conversations.pipeline.storage.orm import OrmStorage
from tests.factories import make_bot, make_channel, make_model, make_tenant

S = InboundMessage.Status
pytestmark = pytest.mark.django_db


def _implementations():
    yield pytest.param(OrmStorage, id="orm")
    yield pytest.param("postgres", id="postgres")


@pytest.fixture(params=list(_implementations()))
def store(request):
    if request.param == "postgres":
        if connection.vendor != "postgresql":
            pytest.skip("PostgresStorage needs PostgreSQL (DATABASE_URL)")
        from apps.conversations.pipeline.storage.postgres import PostgresStorage

        return PostgresStorage()
    return request.param()


@pytest.fixture
def bot():
    tenant = make_tenant("acme")
    return make_bot(tenant, model=make_model(tenant, "primary"), idle_timeout_minutes=30)


@pytest.fixture
def channel(bot):
    return make_channel(bot, platform="web", key="acme-web")


def received(channel, text="hello", *, user="u1", chat="chat-1", **fields) -> InboundMessage:
    n = InboundMessage.objects.count()
    return InboundMessage.objects.create(
        channel=channel, platform_message_id=f"m-{n}", chat_id=chat, user_id=user, text=text, **fields
    )


def claimed(store, row: InboundMessage):
    """The turn for ``row``, claimed, with its conversation (as the session step leaves it)."""
    turn = store.claim(row.pk)
    assert turn is not None
    turn.conversation = store.conversation(turn)
    turn.language = "en"
    return turn


def taken_over(store, row: InboundMessage):
    """Another worker claims ``row`` after this one's lease ran out: returns that worker's turn."""
    InboundMessage.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    other = store.claim(row.pk)
    assert other is not None
    return other


def status(row: InboundMessage) -> str:
    return InboundMessage.objects.values_list("status", flat=True).get(pk=row.pk)


# --- claim ----------------------------------------------------------------------------------------


def test_a_message_is_claimed_once_and_again_only_after_its_lease(store, channel):
    row = received(channel)
    first = store.claim(row.pk)
    assert first is not None and first.attempt == 1 and status(row) == S.PROCESSING
    assert store.claim(row.pk) is None  # held by a live worker
    second = taken_over(store, row)
    assert second.attempt == 2
    assert not store.touch(first) and store.touch(second)


def test_a_message_tried_too_often_is_given_up(store, channel):
    row = received(channel)
    InboundMessage.objects.filter(pk=row.pk).update(attempts=MAX_ATTEMPTS)
    assert store.claim(row.pk) is None
    assert status(row) == S.FAILED
    assert store.claim(received(channel, status=S.ANSWERED).pk) is None  # finished: not claimable


def test_the_claim_reads_the_message_its_bot_and_the_models_the_bot_names(store, bot, channel):
    tenant = bot.tenant
    spare = make_model(tenant, "spare")
    other = make_model(tenant, "other")
    routed = make_model(tenant, "zh-model", enabled=False)
    make_model(tenant, "unnamed")
    foreign = make_model(make_tenant("globex"), "primary")
    BotFallback.objects.create(bot=bot, model=other, position=5)
    BotFallback.objects.create(bot=bot, model=spare, position=2)
    BotFallback.objects.create(bot=bot, model=foreign, position=1)
    bot.language_routes = {"zh": "zh-model"}
    bot.save()
    turn = store.claim(received(channel).pk)
    assert (turn.bot.pk, turn.bot.tenant.slug, turn.channel.pk) == (bot.pk, "acme", channel.pk)
    # What the bot names in its own tenant, enabled or not: the router's rule picks from these.
    assert sorted(m.name for m in turn.models.candidates) == ["other", "primary", "spare", "zh-model"]
    assert turn.models.fallback_ids == [foreign.pk, spare.pk, other.pk]
    assert routed.pk in {m.pk for m in turn.models.candidates}


# --- the conversation and the user's turn -------------------------------------------------------


def test_one_active_conversation_per_sender_and_a_new_one_after_idling(store, bot, channel):
    first = claimed(store, received(channel))
    assert first.conversation.status == Conversation.Status.ACTIVE and first.conversation.bot is first.bot
    again = claimed(store, received(channel, "more"))
    assert again.conversation.pk == first.conversation.pk
    elsewhere = claimed(store, received(channel, user="u2"))
    assert elsewhere.conversation.pk != first.conversation.pk
    Conversation.objects.filter(pk=first.conversation.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))
    later = claimed(store, received(channel, "back again"))
    assert later.conversation.pk != first.conversation.pk
    assert Conversation.objects.get(pk=first.conversation.pk).status == Conversation.Status.CLOSED


def test_a_message_linked_to_a_closed_conversation_gets_the_active_one(store, bot, channel):
    old = claimed(store, received(channel))
    store.store_user_turn(old)
    store.close_conversation(old.conversation)
    row = received(channel, "resumed")
    InboundMessage.objects.filter(pk=row.pk).update(conversation=old.conversation)
    turn = claimed(store, row)
    assert turn.conversation.pk != old.conversation.pk and turn.conversation.status == Conversation.Status.ACTIVE


def test_the_user_turn_is_stored_once_dated_at_arrival_and_linked(store, channel):
    row = received(channel, "hello there")
    turn = claimed(store, row)
    msg = store.store_user_turn(turn, source="")
    assert store.store_user_turn(turn) is msg
    stored = Message.objects.get(role="user")
    assert (stored.pk, stored.text, stored.created_at, stored.language) == (
        msg.pk,
        "hello there",
        row.received_at,
        "en",
    )
    assert InboundMessage.objects.get(pk=row.pk).conversation_id == turn.conversation.pk
    # Claimed again after a crash: the turn is found, not stored twice.
    retry = taken_over(store, row)
    retry.conversation = store.conversation(retry)
    assert store.store_user_turn(retry).pk == msg.pk
    assert Message.objects.filter(role="user").count() == 1


# --- the snapshot and merging -------------------------------------------------------------------


def test_the_snapshot_sees_ownership_newer_pending_and_in_flight_messages_and_the_context(store, channel):
    earlier = claimed(store, received(channel, "first"))
    store.store_user_turn(earlier)
    answered = store.store_reply(earlier, text="an answer", source="model")
    store.record_delivery(earlier, answered, SentRef("p-1"), status=S.ANSWERED, conversation=earlier.conversation)
    command = claimed(store, received(channel, "/help"))
    store.store_user_turn(command, source="command")
    waiting = received(channel, "still queued")
    in_flight = received(channel, "claimed elsewhere")
    assert store.claim(in_flight.pk) is not None
    turn = claimed(store, received(channel, "this one", user_name="Ann"))
    turn.text_language = "zh"
    store.store_user_turn(turn)
    since = timezone.now() - timedelta(minutes=1)
    snap = store.snapshot(turn, in_flight_since=since)
    assert snap.owned and snap.newer is None
    assert (snap.pending, snap.in_flight) == ([waiting.pk], [in_flight.pk])
    assert [t.text for t in snap.turns] == ["first", "an answer", "this one"]  # no commands
    # Each turn as stored (the conversation's language is worked out from them).
    last = snap.turns[-1]
    assert (last.role, last.author_id, last.author_name, last.language) == ("user", "u1", "Ann", "zh")
    newer = received(channel, "written again")
    received(channel, "other sender", user="u2")
    snap = store.snapshot(turn, in_flight_since=since)
    assert snap.newer == (newer.pk, "written again")
    taken_over(store, InboundMessage.objects.get(pk=turn.inbound.pk))
    assert not store.snapshot(turn, in_flight_since=since).owned


def test_waiting_messages_are_merged_into_the_answer(store, channel):
    store.store_user_turn(claimed(store, received(channel, "hi")))  # the conversation has begun
    waiting = received(channel, "my order")
    turn = claimed(store, received(channel, "has not arrived"))
    store.store_user_turn(turn)
    snap = store.snapshot(turn, in_flight_since=timezone.now())
    assert store.merge_pending(turn, snap.pending)
    assert status(waiting) == S.MERGED
    texts = [t.text for t in store.context_turns(turn.conversation, limit=10)]
    assert texts == ["hi", "my order", "has not arrived"]
    assert not store.merge_pending(turn, snap.pending)  # merged once


# --- the reply and its delivery -----------------------------------------------------------------


def test_the_reply_is_stored_linked_delivered_and_the_message_finished(store, channel):
    row = received(channel)
    turn = claimed(store, row)
    store.store_user_turn(turn)
    reply = store.store_reply(turn, text="Hi!", check_newer=True, source="model", language="en")
    assert reply is not None and reply.pk and not reply.interrupted
    assert InboundMessage.objects.get(pk=row.pk).reply_id == reply.pk
    assert store.record_delivery(
        turn, reply, SentRef("p-9"), status=S.ANSWERED, conversation=turn.conversation, language="zh"
    )
    stored = Message.objects.get(pk=reply.pk)
    assert stored.delivered_at is not None and stored.platform_message_id == "p-9"
    assert status(row) == S.ANSWERED
    assert Conversation.objects.get(pk=turn.conversation.pk).language == "zh"


def test_a_newer_message_interrupts_the_answer_which_is_kept_for_review(store, channel):
    row = received(channel, "first question")
    turn = claimed(store, row)
    store.store_user_turn(turn)
    received(channel, "actually, something else")
    reply = store.store_reply(turn, text="An answer to the first.", check_newer=True, source="model")
    assert reply is not None and reply.interrupted
    assert status(row) == S.INTERRUPTED and InboundMessage.objects.get(pk=row.pk).reply_id is None
    kept = Message.objects.get(role="assistant")
    assert kept.interrupted and kept.text == "An answer to the first."
    assert "An answer to the first." not in [t.text for t in store.context_turns(turn.conversation, limit=10)]


def test_an_empty_interrupted_answer_is_not_kept(store, channel):
    row = received(channel)
    turn = claimed(store, row)
    received(channel, "again")
    reply = store.store_reply(turn, text="", check_newer=True, source="model")
    assert reply is not None and reply.interrupted
    assert status(row) == S.INTERRUPTED and not Message.objects.filter(role="assistant").exists()


def test_a_worker_that_lost_its_claim_stores_and_finishes_nothing(store, channel):
    row = received(channel)
    lost = claimed(store, row)
    store.store_user_turn(lost)
    owner = taken_over(store, row)
    assert store.store_reply(lost, text="late answer", source="model") is None
    assert not store.finish(lost, S.ANSWERED)
    store.release(lost, error="boom", permanent=True)
    assert status(row) == S.PROCESSING
    assert not Message.objects.filter(role="assistant").exists()
    owner.conversation = store.conversation(owner)
    reply = store.store_reply(owner, text="answer", source="model")
    assert reply is not None
    assert not store.record_delivery(lost, reply, None, status=S.ANSWERED)
    assert status(row) == S.PROCESSING


def test_a_worker_that_lost_its_claim_stores_nothing_even_when_the_sender_wrote_again(store, channel):
    """The two implementations once disagreed here: the ORM one kept the interrupted answer and
    tried to finish the message without asking whether the worker still owned it."""
    row = received(channel, "first question")
    lost = claimed(store, row)
    taken_over(store, row)
    received(channel, "written again")
    assert store.store_reply(lost, text="a late answer", check_newer=True, source="model") is None
    assert not Message.objects.filter(role="assistant").exists()
    assert status(row) == S.PROCESSING  # still the other worker's
