"""Answers from knowledge bases, end to end through the webhook and the pipeline: sources in the
prompt, citations under the answer, the no-answer text, the general fallback, the built-in model
answering from documents, the passages kept for review, and Q&A entries on every turn."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.conversations.models import Message
from apps.conversations.review import knowledge_from_correction
from apps.knowledge.models import KnowledgeBase
from tests.conversations.conftest import post_message
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant, make_user
from tests.knowledge.conftest import upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def answering(make_setup):
    bot, channel = make_setup(system_prompt="You are ACME's assistant.")
    kb = KnowledgeBase.objects.create(tenant=bot.tenant, name="Handbook")
    kb.bots.add(bot)
    upload(kb, "handbook.docx")
    upload(kb, "shipping.html")
    return bot, channel


def system_messages(request) -> list[str]:
    return [m["content"] for m in request.json()["messages"] if m["role"] == "system"]


def test_passages_go_to_the_model_and_the_answer_cites_them(client, answering, llm, platform_api, superuser):
    bot, channel = answering
    llm.set(text="我们每天上午九点开门，晚上九点关门 [1]。")
    post_message(client, channel, id="m-1", text="你们几点开门？")
    (request,) = llm.requests
    system = system_messages(request)
    # The bot's own prompt first (the reply-language instruction follows it), then the sources.
    assert system[0].startswith("You are ACME's assistant.")
    assert "简体中文" in system[0]
    assert system[1].startswith("请根据下面编号的资料回答")
    assert "[1] 员工手册 Staff handbook — 门店服务 › 营业时间\n我们每天上午九点开门" in system[1]
    (sent,) = platform_api.sent
    assert sent["text"].startswith("我们每天上午九点开门，晚上九点关门 [1]。")
    assert "**来源**" in sent["text"] and "\\[1\\] 员工手册 Staff handbook — 门店服务 › 营业时间" in sent["text"]

    reply = Message.objects.get(role="assistant")
    assert reply.source == "model"
    first = reply.knowledge_sources[0]
    assert first["n"] == 1 and first["section"] == "门店服务 › 营业时间" and 0 < first["relevance"] <= 1
    # The review transcript shows which passages the answer was given, with their scores.
    client.force_login(superuser)
    page = client.get(reverse("admin:conversations_conversation_change", args=[reply.conversation_id]))
    html = page.content.decode()
    assert 'data-testid="sources"' in html and "门店服务 › 营业时间" in html
    # A reviewer's correction still becomes a Q&A entry.
    reply.correction = "每天 9:00–21:00。"
    reply.save()
    owner = make_user("owner", tenant=bot.tenant, role="owner")
    entry = knowledge_from_correction(message=reply, user=owner)
    assert entry.question == "你们几点开门？" and entry.answer == "每天 9:00–21:00。"


def test_nothing_relevant_means_i_dont_know_in_the_users_language(client, answering, llm, platform_api):
    _, channel = answering
    # Two users, each in their own language (a conversation answers in its dominant language).
    post_message(client, channel, id="m-1", user="u-en", chat="c-en", text="What is the capital of Mongolia?")
    post_message(client, channel, id="m-2", user="u-zh", chat="c-zh", text="火星上有水吗？")
    assert llm.calls == 0
    assert platform_api.texts() == [
        "Sorry, I don't know — I found nothing about that in my documents.",
        "抱歉，我不知道——我的资料里没有找到相关内容。",
    ]
    assert Message.objects.filter(role="assistant", source="knowledge").count() == 2


def test_the_general_fallback_lets_the_model_answer_without_sources(client, answering, llm, platform_api):
    bot, channel = answering
    bot.knowledge_fallback = bot.KnowledgeFallback.GENERAL
    bot.save()
    llm.set(text="Ulaanbaatar.")
    post_message(client, channel, id="m-1", text="What is the capital of Mongolia?")
    (request,) = llm.requests
    # No sources block: the bot's own prompt (with the reply-language instruction) only.
    (system,) = system_messages(request)
    assert system.startswith("You are ACME's assistant.") and "English" in system
    assert platform_api.texts() == ["Ulaanbaatar."]


def test_without_a_model_the_best_passage_answers_offline(client, platform_api, fakeim):
    tenant = make_tenant("acme")
    bot = make_bot(tenant)  # no model: the built-in one, no API key
    channel = make_channel(bot, platform=fakeim, key="acme-fake", api_base=platform_api.url)
    kb = KnowledgeBase.objects.create(tenant=tenant, name="Handbook")
    kb.bots.add(bot)
    upload(kb, "shipping.html")
    post_message(client, channel, id="m-1", text="How long does international shipping take?")
    (text,) = platform_api.texts()
    assert "International parcels arrive within 7 to 14 days. [1]" in text
    assert "[Shipping FAQ — Shipping FAQ › International shipping]" not in text  # uploaded: no link
    assert "\\[1\\] Shipping FAQ — Shipping FAQ › International shipping" in text


def test_qa_entries_answer_on_every_turn_before_the_documents(client, answering, llm, platform_api):
    bot, channel = answering
    make_knowledge(bot, "营业时间", "每天 9:00–21:00。", keywords="几点开门")
    llm.set(text="Parking is free for two hours [1].")
    post_message(client, channel, id="m-1", text="Where can customers park?")
    post_message(client, channel, id="m-2", text="那你们几点开门？")
    assert platform_api.texts()[1] == "每天 9:00–21:00。"
    assert llm.calls == 1
