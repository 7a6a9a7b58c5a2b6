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
