"""The workflow call is a task on the ``webhooks`` queue, apart from the message path's ``llm``
queue (real PostgreSQL, Redis and Celery worker processes of this module's own)."""

from __future__ import annotations

import time

import pytest

from apps.workflows.models import WorkflowRun
from tests.conversations.conftest import needs_real_backends, post_message, wait_for

pytestmark = [needs_real_backends, pytest.mark.slow, pytest.mark.timeout(90)]


def test_calls_go_to_the_webhooks_queue(client, make_setup, make_workflow, start_worker, business, platform_api):
    """A worker on the ``llm`` queue alone handles the message but never the call: a slow business
    system cannot hold up model answers, and the call waits for a worker on ``webhooks``."""
    bot, channel = make_setup()
    make_workflow(bot)
    llm_only = start_worker("-Q", "llm")
    post_message(client, channel, id="m-1", text="/ticket printer")
    wait_for(lambda: WorkflowRun.objects.filter(status=WorkflowRun.Status.QUEUED).exists(), what="the queued run")
    time.sleep(1.0)
    assert business.calls == [] and platform_api.sent == []
    llm_only.stop()
    start_worker("-Q", "webhooks")
    wait_for(lambda: platform_api.sent, what="the result")
    assert platform_api.texts() == ["Ticket T-1042 created."] and len(business.calls) == 1
