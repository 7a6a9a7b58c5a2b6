"""Pipeline behaviour, one step at a time (tasks run eagerly in the test process; the same code
runs on workers — see test_worker.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations import services
from apps.conversations.models import Conversation, InboundMessage, Message
from apps.conversations.pipeline.context import build_context, turn_tokens
from apps.conversations.pipeline.process import handle, process_inbound
from apps.conversations.pipeline.storage import storage

from .conftest import post_message

S = InboundMessage.Status
pytestmark = pytest.mark.django_db(transaction=True)


def user_turns(request) -> list[str]:
    return [m["content"] for m in request.json()["messages"] if m["role"] == "user"]


def test_webhook_only_stores_and_enqueues(client, make_setup, platform_api, llm, settings):
    """The webhook path does no model or platform I/O: with no worker running nothing is sent."""
    settings.TASKS_MODE = "celery"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    _, channel = make_setup()
    from config.celery import app

    app.conf.broker_url = "memory://"  # no worker: the message just waits in the broker
    try:
        assert post_message(client, channel, id="m-1", text="hello") == 200
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    row = InboundMessage.objects.get()
    assert row.status == S.RECEIVED and row.text == "hello"
    assert llm.calls == 0 and platform_api.sent == []


def test_answer_goes_out_with_a_feedback_link(client, make_setup, platform_api, llm):
    bot, channel = make_setup()
    llm.set(text="**Hi!**")
    post_message(client, channel, id="m-1", text="hello")
    (sent,) = platform_api.sent
    assert sent["text"] == "**Hi!**"
    assert sent["feedback_url"].startswith("http") and "/feedback/" in sent["feedback_url"]
    reply = Message.objects.get(role="assistant")
    assert reply.delivered_at is not None and reply.source == "model" and reply.tokens_out > 0
    assert sent["idempotency_key"] == f"parley-{reply.pk}"

    bot.feedback_links = False
    bot.save()
    post_message(client, channel, id="m-2", text="again")
    assert platform_api.sent[1]["feedback_url"] == ""


def test_context_is_trimmed_to_the_token_budget(client, make_setup, llm):
    _, channel = make_setup(system_prompt="You are ACME's helpful assistant.", context_max_tokens=120)
    long = "word " * 30  # ~40 tokens each
    for i in range(4):
        llm.set(text=f"answer {i}")
        post_message(client, channel, id=f"m-{i}", text=f"{i} {long}")
    messages = llm.requests[-1].json()["messages"]
    system = "You are ACME's helpful assistant.\n\nAlways answer in English."
    assert messages[0] == {"role": "system", "content": system}
    assert messages[-1]["content"].startswith("3 ")  # the newest turn
    assert not any(m["content"].startswith(("0 ", "1 ")) for m in messages)  # the oldest fell out
    assert sum(turn_tokens(m["content"]) for m in messages) <= 120 + turn_tokens(messages[-1]["content"])
    assert messages[1]["role"] == "user"  # never starts with an answer


def test_context_keeps_the_newest_turns_only(client, make_setup, llm):
    _, channel = make_setup(context_max_turns=3)
    for i in range(4):
        llm.set(text=f"a{i}")
        post_message(client, channel, id=f"m-{i}", text=f"q{i}")
    contents = [m["content"] for m in llm.requests[-1].json()["messages"] if m["role"] != "system"]
    assert contents == ["q2", "a2", "q3"]


def test_idle_timeout_starts_a_fresh_conversation(client, make_setup, llm):
    _, channel = make_setup(idle_timeout_minutes=30)
    post_message(client, channel, id="m-1", text="first")
    Conversation.objects.update(last_activity_at=timezone.now() - timedelta(minutes=31))
    post_message(client, channel, id="m-2", text="second")
    assert user_turns(llm.requests[-1]) == ["second"]
    assert Conversation.objects.filter(status="active").count() == 1
    assert Conversation.objects.filter(status="closed").count() == 1


def test_group_chat_is_one_conversation_with_turns_attributed(client, make_setup, llm):
    _, channel = make_setup()
    post_message(client, channel, id="g-1", chat="room", user="u1", name="Alice", group=True, text="hi all")
    post_message(client, channel, id="g-2", chat="room", user="u2", name="Bob", group=True, text="hello bot")
    assert Conversation.objects.count() == 1
    assert user_turns(llm.requests[-1]) == ["Alice: hi all", "Bob: hello bot"]
    assert list(Message.objects.filter(role="user").values_list("author_id", flat=True)) == ["u1", "u2"]


def test_separate_users_have_separate_conversations(client, make_setup, llm):
    _, channel = make_setup()
    post_message(client, channel, id="p-1", chat="c1", user="u1", text="mine")
    post_message(client, channel, id="p-2", chat="c2", user="u2", text="yours")
    assert user_turns(llm.requests[-1]) == ["yours"]
    assert Conversation.objects.count() == 2


def test_help_menu_default_custom_and_chinese(client, make_setup, platform_api, llm):
    bot, channel = make_setup()
    post_message(client, channel, id="c-1", text="/help")
    assert "/reset" in platform_api.texts()[0] and "Helpdesk" in platform_api.texts()[0]
    post_message(client, channel, id="c-2", text="/帮助")
    assert "你好" in platform_api.texts()[1]
    bot.help_text = "Ask me about parcels."
    bot.save()
    post_message(client, channel, id="c-3", text="/help@parley_bot")
    assert platform_api.texts()[2] == "Ask me about parcels."
    assert llm.calls == 0
    # Commands are not part of what the model sees.
    post_message(client, channel, id="m-1", text="hello")
    assert user_turns(llm.requests[-1]) == ["hello"]


def test_help_follows_the_conversation_language(client, make_setup, platform_api, llm):
    _, channel = make_setup()
    post_message(client, channel, id="m-1", text="你好，请问营业时间是几点？")
    post_message(client, channel, id="c-1", text="/help")
    assert "命令" in platform_api.texts()[-1]


def test_reset_starts_a_new_conversation(client, make_setup, platform_api, llm):
    _, channel = make_setup()
    post_message(client, channel, id="m-1", text="remember 42")
    post_message(client, channel, id="c-1", text="/reset")
    assert "new conversation" in platform_api.texts()[-1]
    post_message(client, channel, id="m-2", text="what number?")
    assert user_turns(llm.requests[-1]) == ["what number?"]


def test_stop_with_nothing_in_progress(client, make_setup, platform_api):
    _, channel = make_setup()
    post_message(client, channel, id="c-1", text="/stop")
    assert platform_api.texts() == ["There is no answer in progress."]


def test_unknown_command_hints_at_help(client, make_setup, platform_api, llm):
    _, channel = make_setup()
    post_message(client, channel, id="c-1", text="/weather Beijing")
    assert platform_api.texts() == ["I don't know the command `/weather`. Send `/help` to see what I can do."]
    assert llm.calls == 0
    post_message(client, channel, id="m-1", text="/ 2 is a slash")  # not a command
    assert llm.calls == 1


def test_lang_pins_the_answer_language(client, make_setup, platform_api, llm):
    _, channel = make_setup()
    post_message(client, channel, id="c-1", text="/lang zh")
    assert platform_api.texts() == ["好的，之后我会用中文回答。"]
    post_message(client, channel, id="m-1", text="What time is it?")
    system = llm.requests[-1].json()["messages"][0]
    assert system["role"] == "system" and "中文" in system["content"]
    post_message(client, channel, id="c-2", text="/lang klingon")
    assert "Usage" in platform_api.texts()[-1] or "用法" in platform_api.texts()[-1]


def test_bot_wide_rate_limit(client, make_setup, platform_api, llm):
    _, channel = make_setup(rate_limit_per_second=1)
    post_message(client, channel, id="m-1", user="u1", text="one")
    post_message(client, channel, id="m-2", user="u2", text="two")
    refused = InboundMessage.objects.get(platform_message_id="m-2")
    if refused.refused_by:  # the two may straddle a one-second window edge
        assert refused.refused_by == "bot" and refused.status == S.RATE_LIMITED
        assert "a lot of messages" in platform_api.texts()[-1]
        assert llm.calls == 1


def test_pii_is_masked_for_the_model_when_the_policy_says_so(client, make_setup, llm):
    bot, channel = make_setup()
    post_message(client, channel, id="m-1", text="my number is 13812345678")
    assert user_turns(llm.requests[-1]) == ["my number is 138******78"]
    # Stored as written (staff with the reveal permission can see it).
    assert Message.objects.filter(text="my number is 13812345678").exists()
    bot.pii_policy = "allow"
    bot.save()
    post_message(client, channel, id="m-2", text="call 13912345678")
    assert user_turns(llm.requests[-1])[-1] == "call 13912345678"


def test_knowledge_entry_answers_a_first_question_without_the_model(client, make_setup, platform_api, llm):
    from tests.factories import make_knowledge

    bot, channel = make_setup()
    make_knowledge(bot, "What are your opening hours?", "9:00-17:00, Monday to Friday.")
    post_message(client, channel, id="m-1", text="what are your opening hours")
    assert platform_api.texts() == ["9:00-17:00, Monday to Friday."]
    assert llm.calls == 0


def test_delivered_answer_is_not_sent_again_and_undelivered_one_is_resent(make_setup, platform_api, llm):
    """A message re-driven after a crash: the stored answer is re-sent, never regenerated, and an
    answer already delivered is never sent twice."""
    _, channel = make_setup()
    services.accept_inbound(channel=channel, inbounds=[_inbound("m-1", "hello")])
    assert platform_api.texts() == ["Hello from the fake model."]
    row = InboundMessage.objects.get()
    # Simulate a worker that died after delivering, before marking the message answered.
    InboundMessage.objects.filter(pk=row.pk).update(status=S.PROCESSING, claimed_at=timezone.now() - timedelta(hours=1))
    process_inbound(row.pk)
    assert platform_api.texts() == ["Hello from the fake model."] and llm.calls == 1
    assert InboundMessage.objects.get().status == S.ANSWERED
    # ... and one that died after storing, before delivering.
    Message.objects.filter(role="assistant").update(delivered_at=None)
    InboundMessage.objects.filter(pk=row.pk).update(status=S.PROCESSING, claimed_at=timezone.now() - timedelta(hours=1))
    process_inbound(row.pk)
    assert platform_api.texts() == ["Hello from the fake model."] * 2 and llm.calls == 1


def test_live_claim_is_not_taken_and_a_lost_claim_stores_nothing(make_setup):
    _, channel = make_setup()
    row = _stored(channel, "m-1", "hello")
    first = storage().claim(row.pk)
    assert first is not None and storage().claim(row.pk) is None  # held by a live worker
    InboundMessage.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    second = storage().claim(row.pk)
    assert second is not None and second.attempt == 2
    conv = Conversation.objects.create(tenant=channel.bot.tenant, bot=channel.bot, channel=channel, chat_id="c")
    first.conversation = second.conversation = conv
    assert storage().store_reply(first, text="late answer") is None  # the presumed-dead worker
    assert storage().store_reply(second, text="answer") is not None


def test_a_worker_that_lost_its_claim_asks_no_model_and_sends_nothing(make_setup, platform_api, llm):
    """Presumed dead while it worked (its lease ran out and another worker claimed the message),
    a worker finds out before the model is asked, on every database."""
    _, channel = make_setup(merge_window_ms=0)
    row = _stored(channel, "m-1", "hello")
    lost = storage().claim(row.pk)
    InboundMessage.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert storage().claim(row.pk) is not None
    handle(lost)
    assert llm.calls == 0 and platform_api.sent == []
    assert not Message.objects.filter(role="assistant").exists()
    assert InboundMessage.objects.get(pk=row.pk).status == S.PROCESSING  # the other worker's


def test_sweeper_redrives_a_message_whose_worker_died(make_setup, platform_api):
    _, channel = make_setup()
    row = _stored(channel, "m-1", "hello")
    InboundMessage.objects.filter(pk=row.pk).update(
        status=S.PROCESSING, attempts=1, claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert services.sweep_inbound() == 1
    assert platform_api.texts() == ["Hello from the fake model."]
    assert InboundMessage.objects.get().status == S.ANSWERED
    assert services.sweep_inbound() == 0


def test_sweeper_gives_up_after_repeated_attempts(make_setup, platform_api):
    _, channel = make_setup()
    row = _stored(channel, "m-1", "hello")
    InboundMessage.objects.filter(pk=row.pk).update(
        status=S.PROCESSING, attempts=5, claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert services.sweep_inbound() == 0
    assert InboundMessage.objects.get().status == S.FAILED
    assert platform_api.sent == []


def test_platform_outage_hands_the_reply_to_the_delivery_retries(make_setup, platform_api, llm, settings):
    """The platform refuses the reply: the message is answered (its claims are not spent waiting on
    the platform), the reply waits for a retry, and the retry sends it once the platform is back."""
    from apps.conversations import delivery

    settings.PARLEY_DELIVERY_BACKOFF_SECONDS = 0.01
    _, channel = make_setup()
    platform_api.status = 503
    row = _stored(channel, "m-1", "hello")
    process_inbound(row.pk)
    row.refresh_from_db()
    assert row.status == S.ANSWERED and row.attempts == 1
    reply = Message.objects.get(role="assistant")
    assert reply.delivered_at is None and reply.delivery_state == "pending" and "503" in reply.delivery_error
    process_inbound(row.pk)  # a redelivered task: finished, nothing made or sent again
    assert llm.calls == 1 and platform_api.sent == []

    platform_api.status = 200
    time.sleep(0.05)
    assert delivery.sweep_deliveries() == 1
    assert platform_api.texts() == ["Hello from the fake model."] and llm.calls == 1
    assert Message.objects.get(role="assistant").delivery_state == "delivered"


def test_a_reply_the_platform_refuses_for_good_fails_the_message_with_its_reason(make_setup, platform_api):
    _, channel = make_setup()
    platform_api.status = 403
    row = _stored(channel, "m-1", "hello")
    process_inbound(row.pk)
    row.refresh_from_db()
    assert row.status == S.FAILED and "403" in row.error
    assert Message.objects.get(role="assistant").delivery_state == "failed"


def test_build_context_question_only_for_context_free_turns(make_setup):
    bot, channel = make_setup()
    conv = Conversation.objects.create(tenant=bot.tenant, bot=bot, channel=channel, chat_id="c")
    Message.objects.create(conversation=conv, role="user", text="hi")
    Message.objects.create(conversation=conv, role="user", text="there")
    _, question = build_context(conv, storage().context_turns(conv, limit=20), mask_pii=False)
    assert question == "hi\nthere"
    Message.objects.create(conversation=conv, role="assistant", text="hello", source="model")
    Message.objects.create(conversation=conv, role="user", text="more")
    _, question = build_context(conv, storage().context_turns(conv, limit=20), mask_pii=False)
    assert question is None


def _inbound(message_id: str, text: str, user: str = "u1"):
    from apps.channels.platforms.base import Inbound

    return Inbound(message_id=message_id, chat_id="chat-1", user_id=user, text=text)


def _stored(channel, message_id: str, text: str) -> InboundMessage:
    """A stored message whose task has not run (as if the worker never got to it)."""
    return InboundMessage.objects.create(channel=channel, platform_message_id=message_id, chat_id="chat-1", text=text)
