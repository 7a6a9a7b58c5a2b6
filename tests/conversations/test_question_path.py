"""Context-free questions through the pipeline: knowledge entries, the per-bot answer cache, and
single-flight (identical questions in flight at once make one model call)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.channels.platforms import registry
from apps.conversations.models import InboundMessage, Message
from apps.conversations.pipeline.process import process_inbound
from tests.factories import make_bot, make_channel, make_knowledge, make_model, make_tenant
from tests.fakes.llm import FakeOpenAI

from .fake_platform import PLATFORM, FakeIMAdapter

pytestmark = pytest.mark.django_db(transaction=True)
Q = "What are your opening hours?"
#: How long the fake model takes where questions must be in flight together: every asking thread
#: reaches the single flight well within it, on a busy CI machine too.
IN_FLIGHT = 1.5
STREAMING = "fakestream"
#: What the streaming platform's sink received, per reply reference.
streamed: dict[str, list[str]] = {}


class StreamingAdapter(FakeIMAdapter):
    """The test platform, showing answers as they are made (as the web chat does)."""

    platform = STREAMING

    def token_sink(self, channel, target, *, reply_ref):
        return streamed.setdefault(reply_ref, []).append


@pytest.fixture(autouse=True)
def streaming_platform():
    registry.PLATFORMS[STREAMING] = registry.Platform(STREAMING, STREAMING, f"{__name__}.StreamingAdapter")
    registry.get_adapter.cache_clear()
    streamed.clear()
    yield
    registry.PLATFORMS.pop(STREAMING, None)
    registry.get_adapter.cache_clear()


def setup_bot(tenant, fake, platform_api, slug="helpdesk", platform=PLATFORM, **kw):
    cfg = make_model(tenant, f"{slug}-model", endpoint=fake.url, timeout_s="10")
    bot = make_bot(tenant, slug=slug, model=cfg, **kw)
    make_channel(bot, platform=platform, key=f"{tenant.slug}-{slug}", api_base=platform_api.url)
    return bot


def ask(bot, text=Q, *, chat=None) -> Message:
    """One message from a new chat (a context-free question), handled by the pipeline; its reply."""
    chat = chat or f"chat-{InboundMessage.objects.count()}"
    row = InboundMessage.objects.create(
        channel=bot.channels.get(), platform_message_id=f"m-{chat}", chat_id=chat, user_id="u1", text=text
    )
    process_inbound(row.pk)
    return Message.objects.get(inbound=row, role="assistant")


def test_knowledge_entry_answers_without_a_model_call_streamed_as_one_piece(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, platform=STREAMING)
    make_knowledge(bot, Q, "9 to 5, Monday to Friday.")
    reply = ask(bot, "what are your OPENING hours")
    assert (reply.text, reply.source, reply.cost) == ("9 to 5, Monday to Friday.", "knowledge", 0)
    assert list(streamed.values()) == [["9 to 5, Monday to Friday."]]
    assert platform_api.texts() == ["9 to 5, Monday to Friday."] and llm.calls == 0


def test_cached_answer_makes_no_second_model_call(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, cache_answers=True)
    llm.set(text="We open at nine.", tokens_in=50, tokens_out=5)
    first = ask(bot)
    second = ask(bot, "  what are your opening hours ")
    assert llm.calls == 1
    assert (first.source, first.cached, first.tokens_in) == ("model", False, 50)
    assert (second.text, second.source, second.cached) == ("We open at nine.", "cache", True)
    assert (second.tokens_in, second.tokens_out, second.cost) == (0, 0, 0)
    assert platform_api.texts() == ["We open at nine."] * 2


def test_without_cache_answers_every_question_calls_the_model(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api)
    ask(bot)
    ask(bot)
    assert llm.calls == 2


def test_a_question_with_an_earlier_answer_in_its_context_is_not_cached(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, cache_answers=True)
    ask(bot, chat="a")
    row = InboundMessage.objects.create(
        channel=bot.channels.get(), platform_message_id="m-2", chat_id="a", user_id="u1", text=Q
    )
    process_inbound(row.pk)  # the same question, asked again in the same conversation
    assert llm.calls == 2


def test_cache_never_crosses_bots_or_tenants(platform_api, llm):
    acme = make_tenant("acme")
    ours = setup_bot(acme, llm, platform_api, cache_answers=True)
    sibling = setup_bot(acme, llm, platform_api, slug="sales", cache_answers=True)
    with FakeOpenAI() as other_llm:
        theirs = setup_bot(make_tenant("globex"), other_llm, platform_api, cache_answers=True)
        llm.set(text="Acme answer.")
        other_llm.set(text="Globex answer.")
        assert ask(ours).text == "Acme answer."
        assert ask(theirs).text == "Globex answer."
        assert other_llm.calls == 1
        llm.set(text="Sales answer.")
        assert ask(sibling).text == "Sales answer."
        assert llm.calls == 2
        # And each bot now hits its own entry.
        assert ask(ours).text == "Acme answer."
        assert ask(theirs).text == "Globex answer."
        assert (llm.calls, other_llm.calls) == (2, 1)


def test_failures_are_not_cached(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, cache_answers=True)
    llm.set(status=500)
    assert ask(bot).failed
    llm.set(text="Back again.")
    assert ask(bot).text == "Back again."


def test_editing_the_model_makes_old_cached_answers_unreachable(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, cache_answers=True)
    llm.set(text="Old model says.")
    ask(bot)
    bot.model.model = "better-model"
    bot.model.save()
    llm.set(text="New model says.")
    assert ask(bot).text == "New model says."


def _ask_concurrently(bot, n, texts=None):
    """``n`` messages from ``n`` chats handled at once by ``n`` workers (threads); their replies."""
    texts = texts or [Q] * n
    rows = [
        InboundMessage.objects.create(
            channel=bot.channels.get(), platform_message_id=f"c-{i}", chat_id=f"c-{i}", user_id="u1", text=text
        )
        for i, text in enumerate(texts)
    ]
    barrier = threading.Barrier(n)

    def work(row):
        try:
            barrier.wait()
            process_inbound(row.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(row,)) for row in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return list(Message.objects.filter(inbound__in=rows, role="assistant"))


@pytest.mark.parametrize("cache_answers", [True, False])
def test_identical_questions_in_flight_make_one_model_call(platform_api, llm, cache_answers):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, cache_answers=cache_answers)
    llm.set(text="Shared answer.", delay=IN_FLIGHT, tokens_in=30, tokens_out=3)
    replies = _ask_concurrently(bot, 5)
    assert llm.calls == 1
    assert len(replies) == 5 and {r.text for r in replies} == {"Shared answer."}
    # Exactly one answer carries the model call's tokens, so usage adds up.
    assert sum(r.tokens_in for r in replies) == 30
    assert sorted(r.source for r in replies) == ["cache"] * 4 + ["model"]
    assert platform_api.texts() == ["Shared answer."] * 5


def test_streaming_waiters_get_the_shared_answer_as_one_piece(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api, platform=STREAMING)
    llm.set(text="Streamed answer.", delay=IN_FLIGHT)
    replies = _ask_concurrently(bot, 3)
    assert llm.calls == 1
    assert {r.text for r in replies} == {"Streamed answer."}
    assert sorted("".join(pieces) for pieces in streamed.values()) == ["Streamed answer."] * 3
    assert sum(len(pieces) == 1 for pieces in streamed.values()) == 2  # the waiters: one piece each


def test_different_questions_are_not_merged(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api)
    llm.set(delay=0.3)
    _ask_concurrently(bot, 2, ["Where is my order?", "Who are you?"])
    assert llm.calls == 2


def test_single_flight_waiters_share_a_failure_instead_of_hammering(platform_api, llm):
    bot = setup_bot(make_tenant("acme"), llm, platform_api)
    llm.set(status=500, delay=IN_FLIGHT)
    replies = _ask_concurrently(bot, 4)
    assert llm.calls == 1
    assert len(replies) == 4 and all(r.failed for r in replies)
