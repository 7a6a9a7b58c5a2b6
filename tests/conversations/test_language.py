"""The language of a conversation end to end: detected among the tenant's languages, dominant
over the conversation's turns, always told to the model, and routed to the model set for it."""

from __future__ import annotations

import pytest

from apps.conversations.models import Conversation, Message
from tests.factories import make_model
from tests.fakes.llm import FakeOpenAI

from .conftest import post_message

pytestmark = pytest.mark.django_db(transaction=True)


def system_prompt(request) -> str:
    messages = request.json()["messages"]
    return messages[0]["content"] if messages[0]["role"] == "system" else ""


def test_reply_language_instruction_is_given_without_lang(client, make_setup, llm):
    _, channel = make_setup(system_prompt="You are ACME's assistant.")
    post_message(client, channel, id="m-1", text="你好，请问你们几点开门？")
    assert system_prompt(llm.requests[-1]) == "You are ACME's assistant.\n\n请始终使用简体中文回答。"
    post_message(client, channel, user="u2", chat="c2", id="m-2", text="Hello, when do you open?")
    assert system_prompt(llm.requests[-1]).endswith("Always answer in English.")


def test_japanese_is_answered_in_japanese_when_the_tenant_enables_it(client, make_setup, llm):
    bot, channel = make_setup()
    bot.tenant.languages = "zh,en,ja"
    bot.tenant.save()
    post_message(client, channel, id="m-1", text="こんにちは、明日は何時に開きますか？")
    assert "日本語" in system_prompt(llm.requests[-1])
    assert Conversation.objects.get().language == "ja"


def test_a_short_english_word_does_not_flip_a_chinese_conversation(client, make_setup, platform_api, llm):
    _, channel = make_setup()
    post_message(client, channel, id="m-1", text="你好，我想查询一下我的订单状态，订单号是 12345")
    post_message(client, channel, id="m-2", text="ok")
    assert Conversation.objects.get().language == "zh"
    assert "中文" in system_prompt(llm.requests[-1])
    # The turn itself keeps its own language (it counts as English in later decisions).
    assert list(Message.objects.filter(role="user").values_list("language", flat=True)) == ["zh", "en"]
    post_message(client, channel, id="c-1", text="/help")
    assert "命令" in platform_api.texts()[-1]


def test_language_routes_send_each_language_to_its_model(client, make_setup, llm):
    """A bot with {"zh": "glm"}: Chinese questions go to the glm model, English ones to the primary."""
    bot, channel = make_setup()
    with FakeOpenAI() as glm:
        glm.set(text="您好，我们早上九点开门。")
        make_model(bot.tenant, "glm", endpoint=glm.url, model="glm-4", timeout_s=10)
        bot.language_routes = {"zh": "glm"}
        bot.save()
        llm.set(text="We open at nine.")
        post_message(client, channel, id="m-1", chat="c-zh", user="u-zh", text="你好，请问你们几点开门？")
        post_message(client, channel, id="m-2", chat="c-en", user="u-en", text="Hello, when do you open?")
        assert glm.requests[0].json()["model"] == "glm-4" and len(glm.requests) == 1
    answers = dict(Message.objects.filter(role="assistant").values_list("conversation__chat_id", "text"))
    assert answers == {"c-zh": "您好，我们早上九点开门。", "c-en": "We open at nine."}
