"""Retrieval: BM25 over jieba tokens offline, vectors from a fake /v1/embeddings server fused by RRF,
the threshold and token budget, and never across tenants or bots."""

from __future__ import annotations

import pytest

from apps.knowledge import services
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.retrieval import choose, search, search_bot
from tests.factories import make_bot, make_tenant
from tests.knowledge.conftest import upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handbook(kb):
    for name in ("handbook.docx", "support.md", "shipping.html", "handbook.pdf"):
        upload(kb, name)
    return kb


def top_text(result) -> str:
    return result.used[0].text if result.used else ""


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("你们几点开门？", "上午九点开门"),
        ("积分怎么抵扣", "一百积分抵一元"),
        ("How long do I have to return an item?", "return any item within 30 days"),
        ("Where can I park?", "basement garage"),
        ("电子发票什么时候发", "二十四小时内"),
        ("How do I reset my password", "Forgot password"),
    ],
)
def test_lexical_retrieval_answers_chinese_and_english_offline(handbook, bot, question, expected):
    result = search_bot(bot, question)
    assert expected in top_text(result)
    best = result.used[0]
    assert best.similarity is None  # no embedding model: BM25 alone, no API key
    assert best.lexical > 0 and 0 < best.relevance <= 1
    assert best.title and best.chunk_id


def test_nothing_relevant_is_below_the_threshold(handbook, bot):
    result = search_bot(bot, "What is the capital of Mongolia?")
    assert result.searched and not result.found
    result = search_bot(bot, "火星上有水吗")
    assert not result.found


def test_hybrid_adds_vectors_and_fuses_rankings(kb, bot, embedding_model, fake_embeddings):
    kb.embedding_model = embedding_model
    kb.save()
    for name in ("handbook.docx", "support.md"):
        upload(kb, name)
    result = search_bot(bot, "积分怎么抵扣现金")
    best = result.used[0]
    assert "一百积分抵一元" in best.text
    assert best.similarity is not None and best.lexical_rank == 1 and best.vector_rank is not None
    assert best.score == pytest.approx(1 / 61 + 1 / (60 + best.vector_rank))
    assert fake_embeddings.requests[-1].json()["input"] == ["积分怎么抵扣现金"]


def test_an_embedding_outage_at_question_time_falls_back_to_lexical(kb, bot, embedding_model, fake_embeddings):
    kb.embedding_model = embedding_model
    kb.save()
    upload(kb, "support.md")
    fake_embeddings.fail = 500
    result = search_bot(bot, "reset my password")
    assert "Forgot password" in top_text(result)
    assert result.vector_error and "500" in result.vector_error and "sk-embed" not in result.vector_error


def test_a_changed_document_answers_with_its_new_text_at_once(kb, bot):
    doc = services.add_text(kb, title="Hours", text="# Hours\nThe shop opens at nine o'clock.")
    assert "nine" in top_text(search_bot(bot, "when does the shop open"))
    doc.refresh_from_db()
    doc.text = "# Hours\nThe shop opens at ten o'clock."
    doc.save()
    services.schedule_index(doc)
    assert "ten" in top_text(search_bot(bot, "when does the shop open"))
    services.delete_document(doc)
    assert not search_bot(bot, "when does the shop open").hits


def test_retrieval_never_crosses_tenants_or_bots(kb, bot, tenant):
    upload(kb, "handbook.docx")
    question = "你们几点开门"
    assert search_bot(bot, question).found

    sibling = make_bot(tenant, "sales")  # same tenant, knowledge base not attached
    assert not search_bot(sibling, question).searched

    other_tenant = make_tenant("globex")
    stranger = make_bot(other_tenant, "helpdesk")
    kb.bots.add(stranger)  # attached by a mistake the admin form refuses: still never searched
    assert not search_bot(stranger, question).searched
    theirs = KnowledgeBase.objects.create(tenant=other_tenant, name="Handbook")
    theirs.bots.add(stranger)
    services.add_text(theirs, title="Globex", text="# 营业时间\nGlobex 每天八点开门。")
    result = search_bot(stranger, question)
    assert result.found and all("Globex" in h.text for h in result.hits)
    assert all("Globex" not in h.text for h in search_bot(bot, question).hits)


def test_chosen_passages_fit_the_token_budget(handbook, bot):
    result = search([handbook], "营业时间 积分 停车 发票 shipping password", threshold=0.0)
    assert len(result.hits) >= 4
    budget = result.hits[0].tokens + result.hits[1].tokens
    chosen = choose(result.hits, threshold=0.0, budget=budget)
    assert sum(h.tokens for h in chosen) <= budget
    assert chosen[0] is result.hits[0]
