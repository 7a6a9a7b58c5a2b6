"""Workflows on real PostgreSQL, Redis and a Celery worker process: the call runs as a task on the
``webhooks`` queue, and however often a message is delivered the business system is called once
and the user told once."""

from __future__ import annotations

import time

import pytest

from apps.workflows.models import WorkflowRun
from tests.conversations.conftest import needs_real_backends, post_message, wait_for

pytestmark = [needs_real_backends, pytest.mark.slow, pytest.mark.timeout(90)]


def test_confirmed_call_on_the_worker_is_made_and_told_once(
    client, make_setup, make_workflow, celery_worker, business, platform_api, llm
):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True, max_retries=2)
    business.script(500)  # one retry on the worker
    post_message(client, channel, id="m-1", text="/ticket printer is broken")
    wait_for(lambda: platform_api.sent, what="the confirmation prompt")
    for _ in range(3):  # the platform redelivers the "yes"
        post_message(client, channel, id="m-2", text="yes")
    wait_for(lambda: len(platform_api.sent) >= 2, what="the result")
    time.sleep(1.0)  # room for a wrongly duplicated call or reply to show up
    assert len(business.calls) == 2  # the 500, then the success
    assert platform_api.texts()[1:] == ["Ticket T-1042 created."]
    run = WorkflowRun.objects.get()
    assert run.status == WorkflowRun.Status.SUCCEEDED and run.attempts == 2
    assert llm.calls == 0


def test_tool_calls_on_the_worker_run_together_and_answer_once(
    client, make_setup, make_workflow, celery_worker, business, platform_api, llm
):
    """The model asks for two tickets at once: on a worker thread the two calls go out together
    (each on its own thread, the database work on the answering one), and the answer comes once
    however often the message is delivered."""
    import json

    from tests.fakes.llm import tool_results

    bot, channel = make_setup()
    make_workflow(
        bot,
        name="Create ticket",
        trigger="tool",
        trigger_value="create_ticket",
        description="Open a support ticket.",
        parameters={"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
        timeout_s=5,
        max_retries=0,
    )
    business.script("slow", "slow")
    llm.set(text=lambda body: " ".join(json.loads(r)["result"]["id"] for r in tool_results(body)) or "?")
    llm.then(
        text="",
        tool_calls=[
            {"name": "create_ticket", "arguments": {"summary": "printer"}},
            {"name": "create_ticket", "arguments": {"summary": "scanner"}},
        ],
    )
    for _ in range(3):
        post_message(client, channel, id="m-1", text="printer and scanner are broken")
    wait_for(lambda: platform_api.sent, what="the answer", timeout=30)
    time.sleep(1.0)
    assert platform_api.texts() == ["T-1042 T-1042"]
    assert len(business.calls) == 2 and llm.calls == 2
    runs = list(WorkflowRun.objects.order_by("pk"))
    assert [r.status for r in runs] == [WorkflowRun.Status.SUCCEEDED] * 2
    # Together: each call takes 1.5 s at the business system; both were back well before 3 s.
    from apps.conversations.models import Message

    entries = Message.objects.get(role="assistant").tool_calls
    assert len(entries) == 2 and max(e["latency_ms"] for e in entries) < 2900
