"""The sweeper for lost workflow calls: a run whose task was lost (a broker flushed, a process
stopped) or whose worker died mid-call is handed to the queue again, a bounded number of times,
then failed with an apology in the user's language — and never makes the business system see a
run twice because it raced a slow worker."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.conversations.models import InboundMessage, Message
from apps.conversations.pipeline.process import process_inbound
from apps.core.models import AuditLog
from apps.workflows.models import WorkflowRun
from apps.workflows.services import workflow_runs_sweep
from apps.workflows.tasks import call_workflow
from config.celery import app
from tests.conversations.conftest import REAL_BACKENDS, needs_real_backends, post_message, wait_for

from .test_pipeline import metric

pytestmark = pytest.mark.django_db(transaction=True)
R = WorkflowRun.Status
FAILED_EN = "Sorry, **Create ticket** could not be completed right now. Please try again later."


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def lost_run(client, channel, settings, *, text="/ticket printer", msg_id="m-1") -> WorkflowRun:
    """A run whose call was queued on a real broker that then lost it (the queue was flushed)."""
    from django.core.cache import cache

    settings.TASKS_MODE = "celery"
    post_message(client, channel, id=msg_id, text=text)
    process_inbound(InboundMessage.objects.get(platform_message_id=msg_id).pk)  # a worker on "llm"
    run = WorkflowRun.objects.get(inbound__platform_message_id=msg_id)
    assert run.status == R.QUEUED
    broker = cache._cache.get_client(write=True)
    assert broker.llen("webhooks") == 1  # the call's task, waiting for a worker …
    broker.delete("webhooks", "llm")  # … and gone
    settings.TASKS_MODE = "eager"
    return run


def stalled(run: WorkflowRun, **state) -> None:
    """Put ``run`` in the state a crash left it in (as the pipeline tests do for messages)."""
    WorkflowRun.objects.filter(pk=run.pk).update(**state)


@needs_real_backends
def test_a_lost_call_is_queued_again_and_the_user_told_once(
    client, make_setup, make_workflow, business, platform_api, settings
):
    bot, channel = make_setup()
    make_workflow(bot)
    run = lost_run(client, channel, settings)
    assert workflow_runs_sweep() == {"requeued": 0, "failed": 0}  # not lost yet: only waiting
    assert business.calls == []
    assert workflow_runs_sweep(now=later(121)) == {"requeued": 1, "failed": 0}
    assert len(business.calls) == 1 and platform_api.texts() == ["Ticket T-1042 created."]
    assert business.calls[0].headers["X-Parley-Run-Id"] == str(run.pk)
    run.refresh_from_db()
    assert run.status == R.SUCCEEDED and run.requeues == 1
    # Finished runs are left alone, and the late original task (had it only been slow) does nothing.
    assert workflow_runs_sweep(now=later(10_000)) == {"requeued": 0, "failed": 0}
    call_workflow.apply(args=[run.pk])
    assert len(business.calls) == 1 and platform_api.texts() == ["Ticket T-1042 created."]


@needs_real_backends
def test_after_the_last_requeue_the_run_fails_and_the_user_is_told_in_their_language(
    client, make_setup, make_workflow, business, platform_api, settings
):
    settings.PARLEY_WORKFLOW_MAX_REQUEUES = 2
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="m-1", text="/ticket 三楼的打印机坏了")
    settings.TASKS_MODE = "celery"  # the "确认" queues the call on a broker that loses it, every time
    post_message(client, channel, id="m-2", text="确认")
    process_inbound(InboundMessage.objects.get(platform_message_id="m-2").pk)
    run = WorkflowRun.objects.get()
    lost_before = metric("lost")
    from django.core.cache import cache

    broker = cache._cache.get_client(write=True)
    for step in (1, 2):
        broker.delete("webhooks")
        assert workflow_runs_sweep(now=later(121 * step)) == {"requeued": 1, "failed": 0}
    broker.delete("webhooks")
    settings.TASKS_MODE = "eager"
    assert workflow_runs_sweep(now=later(121 * 3)) == {"requeued": 0, "failed": 1}
    assert business.calls == []
    assert platform_api.texts()[-1] == "抱歉，「Create ticket」暂时无法完成，请稍后再试。"
    run.refresh_from_db()
    assert run.status == R.FAILED and run.requeues == 2 and run.error.startswith("lost: no worker made the call")
    assert metric("lost") == lost_before + 1
    assert AuditLog.objects.get(action="workflow.called").detail["outcome"] == "lost"
    reply = Message.objects.get(pk=run.reply_id)
    assert reply.failed and reply.delivered_at is not None
    # Told once, whatever else happens to the run.
    assert workflow_runs_sweep(now=later(10_000)) == {"requeued": 0, "failed": 0}
    call_workflow.apply(args=[run.pk])
    assert platform_api.texts().count("抱歉，「Create ticket」暂时无法完成，请稍后再试。") == 1


def test_a_worker_that_died_mid_call_is_replaced_after_its_lease(
    client, make_setup, make_workflow, business, platform_api, settings
):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True, timeout_s=5, max_retries=2)
    post_message(client, channel, id="m-1", text="/ticket printer")
    run = WorkflowRun.objects.get()
    claimed = timezone.now()
    # As if a worker had claimed the confirmed run, started its first attempt, and died.
    stalled(run, status=R.RUNNING, claimed_at=claimed, queued_at=claimed, attempts=1)
    lease = 3 * (5 + 1) + 60  # every attempt (and the short test backoff) plus a minute
    assert workflow_runs_sweep(now=claimed + timedelta(seconds=lease - 5)) == {"requeued": 0, "failed": 0}
    assert workflow_runs_sweep(now=claimed + timedelta(seconds=lease + 1)) == {"requeued": 1, "failed": 0}
    # The business system sees the same run id again and can tell it is the same request.
    assert [c.headers["X-Parley-Run-Id"] for c in business.calls] == [str(run.pk)]
    assert platform_api.texts()[-1] == "Ticket T-1042 created."


def test_giving_up_on_a_call_that_may_have_gone_out_says_so(
    client, make_setup, make_workflow, business, platform_api, settings
):
    settings.PARLEY_WORKFLOW_MAX_REQUEUES = 0
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True, reply_template="")
    post_message(client, channel, id="m-1", text="/ticket printer")
    run = WorkflowRun.objects.get()
    claimed = timezone.now()
    stalled(run, status=R.RUNNING, claimed_at=claimed, queued_at=claimed, attempts=2)
    assert workflow_runs_sweep(now=claimed + timedelta(hours=1)) == {"requeued": 0, "failed": 1}
    assert business.calls == []
    assert platform_api.texts()[-1] == (
        "Sorry, I could not find out whether **Create ticket** went through. Please check before you try again."
    )
    run.refresh_from_db()
    assert run.status == R.FAILED and "may have received it" in run.error


def test_a_call_still_running_within_its_lease_is_left_alone(
    client, make_setup, make_workflow, business, platform_api, settings
):
    """A slow business system: the sweep runs while the worker waits for the answer."""
    settings.PARLEY_WORKFLOW_MAX_REQUEUES = 0
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True, timeout_s=5)
    business.script("slow")
    post_message(client, channel, id="m-1", text="/ticket printer")
    run = WorkflowRun.objects.get()
    stalled(run, status=R.QUEUED, queued_at=timezone.now() - timedelta(minutes=10))
    worker = threading.Thread(target=lambda: (call_workflow.apply(args=[run.pk]), connection.close()))
    worker.start()
    wait_for(lambda: business.calls, what="the slow call to arrive")
    assert workflow_runs_sweep(now=later(30)) == {"requeued": 0, "failed": 0}
    worker.join(timeout=15)
    assert len(business.calls) == 1 and platform_api.texts()[-1] == "Ticket T-1042 created."


@pytest.mark.skipif(not REAL_BACKENDS, reason="concurrent writers need PostgreSQL")
@pytest.mark.parametrize("round_", range(4))
def test_giving_up_racing_a_worker_calls_at_most_once_and_tells_once(
    client, make_setup, make_workflow, business, platform_api, settings, round_
):
    """The sweeper gives up on a run at the very moment a late worker takes it: one of them wins."""
    settings.PARLEY_WORKFLOW_MAX_REQUEUES = 0
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="m-1", text="/ticket printer")
    run = WorkflowRun.objects.get()
    stalled(run, status=R.QUEUED, queued_at=timezone.now() - timedelta(minutes=10))
    barrier = threading.Barrier(2)

    def in_thread(fn):
        def go():
            try:
                barrier.wait(timeout=5)
                fn()
            finally:
                connection.close()

        return threading.Thread(target=go)

    threads = [in_thread(lambda: call_workflow.apply(args=[run.pk])), in_thread(workflow_runs_sweep)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    run.refresh_from_db()
    told = platform_api.texts()[1:]  # after the confirmation prompt
    if run.status == R.SUCCEEDED:
        assert len(business.calls) == 1 and told == ["Ticket T-1042 created."]
    else:
        assert run.status == R.FAILED and business.calls == [] and told == [FAILED_EN]


def test_the_sweeper_is_on_the_beat_schedule():
    """``celery beat`` in production and the embedded in-process beat both read this schedule."""
    entries = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert entries["apps.workflows.tasks.sweep_workflow_runs"] == 60.0


@needs_real_backends
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_beat_on_a_real_worker_recovers_a_call_the_broker_lost(
    client, make_setup, make_workflow, start_worker, beat_args, business, platform_api
):
    """Real worker processes and a real beat: the call's task vanishes from the broker while no
    worker listens to ``webhooks``; the sweeper on the beat hands it out again."""
    from django.core.cache import cache

    bot, channel = make_setup()
    make_workflow(bot)
    llm_only = start_worker("-Q", "llm")
    post_message(client, channel, id="m-1", text="/ticket printer")
    broker = cache._cache.get_client(write=True)
    wait_for(lambda: broker.llen("webhooks") == 1, what="the call's task on the broker")
    broker.delete("webhooks")  # the broker loses it
    llm_only.stop()
    start_worker(
        "-Q", "default,webhooks", *beat_args, PARLEY_WORKFLOW_SWEEP_INTERVAL="1", PARLEY_WORKFLOW_REQUEUE_SECONDS="10"
    )
    wait_for(lambda: platform_api.sent, timeout=60, what="the result, after the sweep")
    assert platform_api.texts() == ["Ticket T-1042 created."] and len(business.calls) == 1
    run = WorkflowRun.objects.get()
    assert run.status == R.SUCCEEDED and run.requeues == 1
