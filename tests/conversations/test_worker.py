"""The pipeline end to end on real PostgreSQL, Redis and Celery worker processes (threads pool):
webhook → InboundMessage → broker → worker → fake model → fake platform API."""

from __future__ import annotations

import contextlib
import json
import time

import pytest

from apps.conversations.models import InboundMessage, Message

from .conftest import needs_real_backends, post_message, wait_for

pytestmark = [needs_real_backends, pytest.mark.slow, pytest.mark.timeout(90)]
S = InboundMessage.Status


def settle(seconds: float = 0.8) -> None:
    """Give a wrongly duplicated answer the time to show up before asserting there is none (a
    window to watch, not a wait for anything: what must happen is waited for with ``wait_for``)."""
    time.sleep(seconds)


def status_of(message_id: str) -> str:
    return InboundMessage.objects.get(platform_message_id=message_id).status


def answered_line(output: str, inbound: int) -> bool:
    """Whether the worker's log has the "message answered" line of message ``inbound``."""
    for line in output.splitlines():
        if line.startswith("{") and '"message answered"' in line:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("message") == "message answered" and record.get("inbound") == inbound:
                    return True
    return False


def clear_of_a_minute_edge(margin: float = 20.0) -> None:
    """Per-minute limits count in fixed windows of the clock's minutes: start a test of one only when
    its messages cannot straddle two windows."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.1)


def test_message_delivered_five_times_is_answered_once(client, make_setup, celery_worker, platform_api, llm):
    _, channel = make_setup()
    llm.set(text="Opening hours are 9 to 5.")
    for _ in range(5):
        assert post_message(client, channel, id="wamid-1", text="When are you open?") == 200
    wait_for(lambda: platform_api.sent, what="the answer")
    # The message is marked answered after the platform took the reply: wait for it, do not assume it.
    wait_for(lambda: status_of("wamid-1") == S.ANSWERED, what="the message marked answered")
    settle()
    assert platform_api.texts() == ["Opening hours are 9 to 5."]
    assert llm.calls == 1
    assert InboundMessage.objects.count() == 1
    assert platform_api.sent[0]["feedback_url"].startswith("http")


def test_a_lone_message_is_answered_without_waiting_for_the_merge_window(
    client, make_setup, celery_worker, platform_api, llm
):
    # The default rule (burst): a message with no earlier one just before it starts at once. A window
    # of 30 s makes any wait for it unmistakable: the answer must come long before the window ends.
    _, channel = make_setup(merge_window_ms=30_000)
    llm.set(text="We open at nine.")
    started = time.monotonic()
    post_message(client, channel, id="lone-1", text="When do you open?")
    wait_for(lambda: platform_api.sent, what="the answer", timeout=20)
    assert time.monotonic() - started < 20
    assert platform_api.texts() == ["We open at nine."]
    wait_for(lambda: status_of("lone-1") == S.ANSWERED, what="answered")


def test_a_burst_is_answered_once_with_all_its_text(client, make_setup, celery_worker, platform_api, llm):
    # The default rule (burst): the first message starts at once; the next ones, written right after,
    # interrupt it or are held for the window, and the last is answered once with the whole burst.
    _, channel = make_setup(merge_window_ms=2500)
    llm.set(text="Sure, order 42 is on its way.")
    for i, text in enumerate(["hi", "about my order", "number 42"]):
        post_message(client, channel, id=f"b-{i}", text=text)
    wait_for(lambda: platform_api.sent, what="the answer")
    wait_for(lambda: not InboundMessage.objects.filter(status__in=[S.RECEIVED, S.PROCESSING]).exists(), what="all done")
    settle(1.2)
    assert platform_api.texts() == ["Sure, order 42 is on its way."]
    contents = [m["content"] for m in llm.requests[-1].json()["messages"] if m["role"] == "user"]
    assert contents == ["hi", "about my order", "number 42"]
    assert status_of("b-2") == S.ANSWERED


def test_messages_inside_the_merge_window_make_one_model_call(client, make_setup, celery_worker, platform_api, llm):
    # The fixed-window rule: every short message waits the window, so the burst makes one model call.
    # Long enough for three webhook calls on a busy CI machine; each sends at once, nothing waits it out.
    _, channel = make_setup(merge_window_ms=2500, merge_mode="window")
    llm.set(text="Sure, order 42 is on its way.")
    for i, text in enumerate(["hi", "about my order", "number 42"]):
        post_message(client, channel, id=f"m-{i}", text=text)
    wait_for(lambda: platform_api.sent, what="the merged answer")
    wait_for(lambda: not InboundMessage.objects.filter(status__in=[S.RECEIVED, S.PROCESSING]).exists(), what="all done")
    settle(1.2)
    assert llm.calls == 1
    contents = [m["content"] for m in llm.requests[0].json()["messages"] if m["role"] == "user"]
    assert contents == ["hi", "about my order", "number 42"]
    assert platform_api.texts() == ["Sure, order 42 is on its way."]
    statuses = sorted(InboundMessage.objects.values_list("status", flat=True))
    assert statuses == [S.ANSWERED, S.MERGED, S.MERGED]


def test_new_message_interrupts_the_answer_in_progress(client, make_setup, celery_worker, platform_api, llm):
    _, channel = make_setup()
    llm.set(text="Both answered.")
    # Hangs until the test ends: only the interruption can end this answer, however slow the machine.
    llm.then(delay=60, text="An answer to the first question only.")  # (set() would clear it)
    post_message(client, channel, id="m-1", text="What is the price?")
    wait_for(lambda: llm.calls == 1, what="the first model call")
    post_message(client, channel, id="m-2", text="And the delivery time?")
    wait_for(lambda: platform_api.sent, what="an answer")
    wait_for(lambda: status_of("m-1") == S.INTERRUPTED, what="interrupted")
    settle()
    assert platform_api.texts() == ["Both answered."]
    contents = [m["content"] for m in llm.requests[1].json()["messages"] if m["role"] == "user"]
    assert contents == ["What is the price?", "And the delivery time?"]


def test_rate_limited_user_gets_a_polite_answer_and_the_message_is_kept(
    client, make_setup, celery_worker, platform_api, llm
):
    _, channel = make_setup(user_rate_limit_per_minute=2)
    clear_of_a_minute_edge()
    for i in range(3):
        post_message(client, channel, id=f"m-{i}", text=f"question {i}")
        wait_for(lambda i=i: len(platform_api.sent) == i + 1, what=f"answer {i}")
    assert llm.calls == 2
    assert "too fast" in platform_api.texts()[2]
    wait_for(lambda: status_of("m-2") == S.RATE_LIMITED, what="status")
    refused = InboundMessage.objects.get(platform_message_id="m-2")
    assert refused.text == "question 2" and refused.refused_by == "user"
    assert Message.objects.filter(inbound=refused, role="user", text="question 2").exists()


def test_commands_on_the_worker(client, make_setup, celery_worker, platform_api, llm):
    _, channel = make_setup(help_text="Ask me about ACME parcels.")
    post_message(client, channel, id="c-1", text="/help")
    wait_for(lambda: platform_api.sent, what="help")
    assert platform_api.texts() == ["Ask me about ACME parcels."]
    assert llm.calls == 0

    llm.then(delay=60, text="a long answer nobody wants")  # held until /stop ends it (or the test ends)
    post_message(client, channel, id="m-1", text="Tell me everything about parcels")
    wait_for(lambda: llm.calls == 1, what="the model call")
    post_message(client, channel, id="c-2", text="/stop")
    wait_for(lambda: len(platform_api.sent) == 2, what="stop answer")
    wait_for(lambda: status_of("m-1") == S.INTERRUPTED, what="stopped")
    settle()
    assert platform_api.texts()[1] == "Stopped."
    assert len(platform_api.sent) == 2

    post_message(client, channel, id="c-3", text="/reset")
    wait_for(lambda: len(platform_api.sent) == 3, what="reset answer")
    llm.set(text="Fresh start.")
    post_message(client, channel, id="m-2", text="hello again")
    wait_for(lambda: len(platform_api.sent) == 4, what="answer after reset")
    users = [m["content"] for m in llm.requests[-1].json()["messages"] if m["role"] == "user"]
    assert users == ["hello again"]


def test_pii_never_reaches_a_log_line(client, make_setup, celery_worker, platform_api, llm):
    _, channel = make_setup()
    secrets = ["13812345678", "alice.wong@example.com", "11010519491231002X", "4111 1111 1111 1111"]
    llm.set(text="Noted: " + " ".join(secrets))  # the model echoes it back, too
    post_message(
        client,
        channel,
        id="pii-1",
        text="My phone 13812345678, mail alice.wong@example.com, id 11010519491231002X, card 4111 1111 1111 1111",
    )
    wait_for(lambda: platform_api.sent, what="the answer")
    # The model saw masked text (the bot's policy is "mask").
    sent_to_model = llm.requests[0].json()["messages"][-1]["content"]
    assert not any(s in sent_to_model for s in secrets)
    # The worker logs about the message after the reply went out (its JSON line names the message).
    inbound = InboundMessage.objects.get(platform_message_id="pii-1").pk
    wait_for(lambda: answered_line(celery_worker.output(), inbound), what="the worker's log line")
    output = celery_worker.output()
    for s in secrets:
        assert s not in output
