"""Context-free questions: knowledge entries, the per-bot answer cache, and single-flight."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.llm import router
from tests.factories import make_bot, make_knowledge, make_model, make_tenant

MESSAGES = [{"role": "user", "content": "What are your opening hours?"}]
Q = "What are your opening hours?"


#: How long the fake model takes where questions must be in flight together: every asking thread
#: reaches the single flight well within it, on a busy CI machine too.
IN_FLIGHT = 1.5


def setup_bot(tenant, fake, slug="helpdesk", **kw):
    cfg = make_model(tenant, f"{slug}-model", endpoint=fake.url, timeout_s="10")
    return make_bot(tenant, slug=slug, model=cfg, **kw)


def test_knowledge_entry_answers_without_a_model_call(tenant, fake_openai):
    bot = setup_bot(tenant, fake_openai)
    make_knowledge(bot, "What are your opening hours?", "9 to 5, Monday to Friday.")
    pieces: list[str] = []
    answer = router.generate(bot=bot, messages=MESSAGES, question="what are your OPENING hours", on_token=pieces.append)
    assert (answer.text, answer.source) == ("9 to 5, Monday to Friday.", "knowledge")
    assert pieces == ["9 to 5, Monday to Friday."]
    assert fake_openai.calls == 0 and answer.cost == 0


def test_cached_answer_makes_no_second_model_call(tenant, fake_openai):
    bot = setup_bot(tenant, fake_openai, cache_answers=True)
    fake_openai.set(text="We open at nine.", tokens_in=50, tokens_out=5)
    first = router.generate(bot=bot, messages=MESSAGES, question=Q)
    second = router.generate(bot=bot, messages=MESSAGES, question="  what are your opening hours ")
    assert fake_openai.calls == 1
    assert (first.source, first.cached, first.tokens_in) == ("model", False, 50)
    assert (second.text, second.source, second.cached) == ("We open at nine.", "cache", True)
    assert (second.tokens_in, second.tokens_out, second.cost) == (0, 0, 0)


def test_without_cache_answers_every_question_calls_the_model(tenant, fake_openai):
    bot = setup_bot(tenant, fake_openai)
    router.generate(bot=bot, messages=MESSAGES, question=Q)
    router.generate(bot=bot, messages=MESSAGES, question=Q)
    assert fake_openai.calls == 2


def test_cache_never_crosses_bots_or_tenants(tenant, fake_openai, fake_openai_2):
    ours = setup_bot(tenant, fake_openai, cache_answers=True)
    sibling = setup_bot(tenant, fake_openai, slug="sales", cache_answers=True)
    other_tenant = make_tenant("globex")
    theirs = setup_bot(other_tenant, fake_openai_2, slug="helpdesk", cache_answers=True)
    fake_openai.set(text="Acme answer.")
    fake_openai_2.set(text="Globex answer.")
    assert router.generate(bot=ours, messages=MESSAGES, question=Q).text == "Acme answer."
    assert router.generate(bot=theirs, messages=MESSAGES, question=Q).text == "Globex answer."
    assert fake_openai_2.calls == 1
    fake_openai.set(text="Sales answer.")
    assert router.generate(bot=sibling, messages=MESSAGES, question=Q).text == "Sales answer."
    assert fake_openai.calls == 2
    # And each bot now hits its own entry.
    assert router.generate(bot=ours, messages=MESSAGES, question=Q).text == "Acme answer."
    assert router.generate(bot=theirs, messages=MESSAGES, question=Q).text == "Globex answer."
    assert (fake_openai.calls, fake_openai_2.calls) == (2, 1)


def test_failures_are_not_cached(tenant, fake_openai):
    bot = setup_bot(tenant, fake_openai, cache_answers=True)
    fake_openai.set(status=500)
    assert router.generate(bot=bot, messages=MESSAGES, question=Q).failed
    fake_openai.set(text="Back again.")
    assert router.generate(bot=bot, messages=MESSAGES, question=Q).text == "Back again."


def test_editing_the_model_makes_old_cached_answers_unreachable(tenant, fake_openai):
    bot = setup_bot(tenant, fake_openai, cache_answers=True)
    fake_openai.set(text="Old model says.")
    router.generate(bot=bot, messages=MESSAGES, question=Q)
    bot.model.model = "better-model"
    bot.model.save()
    fake_openai.set(text="New model says.")
    assert router.generate(bot=bot, messages=MESSAGES, question=Q).text == "New model says."


def _ask_concurrently(bot, n, question=Q, **kw):
    answers, barrier = [], threading.Barrier(n)

    def ask():
        try:
            barrier.wait()
            answers.append(router.generate(bot=bot, messages=MESSAGES, question=question, **kw))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


@pytest.mark.parametrize("cache_answers", [True, False])
def test_identical_questions_in_flight_make_one_model_call(transactional_db, fake_openai, cache_answers):
    bot = setup_bot(make_tenant("acme"), fake_openai, cache_answers=cache_answers)
    fake_openai.set(text="Shared answer.", delay=IN_FLIGHT, tokens_in=30, tokens_out=3)
    answers = _ask_concurrently(bot, 5)
    assert fake_openai.calls == 1
    assert len(answers) == 5 and {a.text for a in answers} == {"Shared answer."}
    # Exactly one answer carries the model call's tokens, so usage adds up.
    assert sum(a.tokens_in for a in answers) == 30
    assert sorted(a.source for a in answers) == ["cache"] * 4 + ["model"]


def test_streaming_waiters_get_the_shared_answer_as_one_piece(transactional_db, fake_openai):
    bot = setup_bot(make_tenant("acme"), fake_openai)
    fake_openai.set(text="Streamed answer.", delay=IN_FLIGHT)
    pieces: list[str] = []
    answers = _ask_concurrently(bot, 3, on_token=pieces.append)
    assert fake_openai.calls == 1
    assert {a.text for a in answers} == {"Streamed answer."}
    assert "".join(pieces) == "Streamed answer." * 3


def test_different_questions_are_not_merged(transactional_db, fake_openai):
    bot = setup_bot(make_tenant("acme"), fake_openai)
    fake_openai.set(delay=0.3)
    barrier = threading.Barrier(2)

    def ask(q):
        barrier.wait()
        router.generate(bot=bot, messages=MESSAGES, question=q)
        connection.close()

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("Where is my order?", "Who are you?")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fake_openai.calls == 2


def test_single_flight_waiters_share_a_failure_instead_of_hammering(transactional_db, fake_openai):
    bot = setup_bot(make_tenant("acme"), fake_openai)
    fake_openai.set(status=500, delay=IN_FLIGHT)
    answers = _ask_concurrently(bot, 4)
    assert fake_openai.calls == 1
    assert all(a.failed for a in answers)
