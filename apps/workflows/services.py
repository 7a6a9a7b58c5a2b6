"""Workflow runs: start one from a message, confirm or cancel it, call the business system, tell
the user the result.

A run moves pending_confirmation → queued → running → succeeded | failed, or to cancelled. Every
move is a conditional UPDATE, so a confirmation counts once (two quick "yes" queue one call), an
expired confirmation can never be used, and one worker at a time calls (a worker presumed dead —
its claim older than the longest the call can take — is taken over; the business system sees the
same ``X-Parley-Run-Id`` and can de-duplicate). The result is stored once as an assistant turn and
sent through the channel like any reply: only while it is not delivered yet. Runs whose task was
lost are handed out again by ``workflow_runs_sweep`` (on the beat), a bounded number of times.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core import metrics
from apps.core.audit import audit_record
from apps.core.tasks import enqueue

from . import client
from .delivery import reply_service
from .models import Workflow, WorkflowRun
from .templating import PAYLOAD_FIELDS, TemplateError, render_payload, render_reply
from .texts import text_for

logger = logging.getLogger(__name__)
R = WorkflowRun.Status


def confirm_seconds() -> int:
    """How long a confirmation prompt stays valid (``PARLEY_WORKFLOW_CONFIRM_SECONDS``, default 600)."""
    return max(1, settings.PARLEY_WORKFLOW_CONFIRM_SECONDS)


def _record_end(run: WorkflowRun, outcome: str, *, response_status: int | None) -> None:
    """A run's end in the metrics, and — for a workflow that asked for confirmation, a sensitive
    operation — in the audit trail."""
    wf = run.workflow
    _count(outcome)
    if wf.confirmation_required:
        audit_record(
            action="workflow.called",
            tenant=wf.tenant,
            target=wf.name,
            run=run.pk,
            workflow=wf.pk,
            conversation=run.conversation_id,
            outcome=outcome,
            response_status=response_status,
            attempts=run.attempts,
        )


def _count(outcome: str) -> None:
    metrics.WORKFLOW_CALLS.labels(outcome).inc()


def requeue_seconds() -> float:
    """How long a queued call may wait for a worker before the sweeper hands it to the queue again
    (``PARLEY_WORKFLOW_REQUEUE_SECONDS``, default 120, at least 10)."""
    return max(10.0, settings.PARLEY_WORKFLOW_REQUEUE_SECONDS)


def max_requeues() -> int:
    """How often the sweeper hands a lost call to the queue again before it gives up and tells the
    user (``PARLEY_WORKFLOW_MAX_REQUEUES``, default 3; 0 gives up at once)."""
    return max(0, settings.PARLEY_WORKFLOW_MAX_REQUEUES)


# --- starting, confirming, cancelling -----------------------------------------------------------


def workflow_run_start(
    *, workflow_id: int, conversation: Any, inbound: Any, text: str, language: str
) -> WorkflowRun | None:
    """The run ``inbound`` starts (created once: handling the same message again returns the same
    run). Pending confirmation when the workflow asks for it, else queued and its call enqueued.
    None when the workflow is gone."""
    wf = Workflow.objects.filter(pk=workflow_id, enabled=True).select_related("tenant").first()
    if wf is None:
        return None
    existing = WorkflowRun.objects.filter(inbound=inbound, call_key="").first()
    if existing is not None:
        if existing.status == R.QUEUED:
            workflow_run_enqueue(existing)
        return existing
    channel = inbound.channel
    bot = channel.bot
    run = WorkflowRun(
        workflow=wf,
        conversation=conversation,
        inbound=inbound,
        user_id=inbound.user_id,
        language=language,
        context={
            "text": text,
            "user_id": inbound.user_id,
            "user_name": inbound.user_name,
            "conversation_id": conversation.pk,
            "tenant": bot.tenant.slug,
            "bot": bot.slug,
            "platform": channel.platform,
            "language": language,
            "workflow": wf.name,
        },
    )
    if wf.confirmation_required:
        run.status = R.PENDING_CONFIRMATION
        run.expires_at = timezone.now() + timedelta(seconds=confirm_seconds())
    else:
        run.status = R.QUEUED
        run.queued_at = timezone.now()
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:  # the same message, handled twice at once
        return WorkflowRun.objects.get(inbound=inbound)
    run.workflow = wf
    if run.status == R.QUEUED:
        workflow_run_enqueue(run)
    return run


def workflow_run_enqueue(run: WorkflowRun) -> None:
    """Start the call of a queued run on the ``webhooks`` queue (after the current transaction)."""
    from .tasks import call_workflow

    enqueue(call_workflow, run.pk)


def pending_run(*, conversation: Any, user_id: str) -> WorkflowRun | None:
    """The newest run of ``user_id`` in ``conversation`` that waits for their confirmation."""
    return (
        WorkflowRun.objects.filter(conversation=conversation, user_id=user_id, status=R.PENDING_CONFIRMATION)
        .select_related("workflow")
        .order_by("-created_at", "-pk")
        .first()
    )


def run_by_inbound(inbound: Any) -> WorkflowRun | None:
    """The run a message started or confirmed (to pick up after a crash), or None."""
    return (
        WorkflowRun.objects.filter(Q(inbound=inbound, call_key="") | Q(confirmed_by=inbound))
        .select_related("workflow")
        .first()
    )


def is_expired(run: WorkflowRun) -> bool:
    return run.expires_at is not None and run.expires_at <= timezone.now()


def workflow_run_confirm(run: WorkflowRun, *, inbound: Any, enqueue: bool = True) -> bool:
    """Queue the call of a pending, unexpired run. False when it was decided already (another
    "yes" was first), expired, or its workflow has been disabled meanwhile. ``enqueue=False``: the
    caller makes the call itself (a tool call, whose result goes back to the model)."""
    now = timezone.now()
    done = WorkflowRun.objects.filter(
        pk=run.pk, status=R.PENDING_CONFIRMATION, expires_at__gt=now, workflow__enabled=True
    ).update(status=R.QUEUED, confirmed_by=inbound, queued_at=now)
    if not done:
        return False
    run.status, run.queued_at = R.QUEUED, now
    wf = run.workflow
    audit_record(
        action="workflow.confirmed",
        tenant=wf.tenant,
        target=wf.name,
        run=run.pk,
        workflow=wf.pk,
        conversation=run.conversation_id,
    )
    if enqueue:
        workflow_run_enqueue(run)
    return True


def workflow_run_cancel(run: WorkflowRun, *, reason: str, outcome: str = "cancelled") -> bool:
    """Cancel a run still waiting for confirmation. False when it was decided already."""
    done = WorkflowRun.objects.filter(pk=run.pk, status=R.PENDING_CONFIRMATION).update(
        status=R.CANCELLED, error=reason, finished_at=timezone.now()
    )
    if done:
        run.status = R.CANCELLED
        _count(outcome)
    return bool(done)


# --- calling -------------------------------------------------------------------------------------


def run_values(run: WorkflowRun) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(PAYLOAD_FIELDS, "")
    values.update(run.context or {})
    values["run_id"] = run.pk
    return values


def _lease_s(wf: Workflow) -> float:
    """How long a worker may hold a run before it is presumed dead: the longest the call can take."""
    return client.call_budget_s(timeout_s=wf.timeout_s, max_retries=wf.max_retries) + 60


def _claim(run: WorkflowRun) -> datetime | None:
    """Take the run for this worker: queued, or running under a worker presumed dead. Returns the
    claim time (the ownership token) or None."""
    now = timezone.now()
    stale = now - timedelta(seconds=_lease_s(run.workflow))
    taken = (
        WorkflowRun.objects.filter(pk=run.pk)
        .filter(Q(status=R.QUEUED) | Q(status=R.RUNNING, claimed_at__lt=stale))
        .update(status=R.RUNNING, claimed_at=now)
    )
    return now if taken else None


def workflow_run_execute(run_id: int) -> None:
    """Call the business system for a queued run (once) and tell the user the result (once).

    Safe to run again for the same run: a finished run is not called again, and its result is
    re-sent only if it was not delivered. Raises ``PlatformError`` when telling the user failed
    (``permanent`` says whether a retry can help) and ``DatabaseError`` on database outages.
    """
    run = WorkflowRun.objects.filter(pk=run_id).select_related("workflow__tenant").first()
    if run is None:
        return
    data: Any = None
    if run.status in (R.QUEUED, R.RUNNING):
        mine = _claim(run)
        if mine is None:
            return
        result = _call(run)
        if not _finish(run, mine, result):
            return
        data = result.data
    if run.status in (R.SUCCEEDED, R.FAILED):
        workflow_run_notify(run, data=data)


def _call(run: WorkflowRun) -> client.CallResult:
    wf = run.workflow
    if not wf.enabled:
        return client.CallResult("cancelled", 0, error="the workflow was disabled before the call")
    try:
        payload = render_payload(wf.payload_template, run_values(run))
    except TemplateError as exc:  # saved before validation existed, or edited around it
        return client.CallResult("failed", 0, error=f"payload template {exc}")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    WorkflowRun.objects.filter(pk=run.pk).update(request_body=payload)
    run.request_body = payload

    def attempt(n: int) -> None:
        WorkflowRun.objects.filter(pk=run.pk).update(attempts=n)

    return client.post_json(
        url=wf.url,
        body=body,
        run_ref=str(run.pk),
        secret=wf.signing_secret or "",
        timeout_s=wf.timeout_s,
        max_retries=wf.max_retries,
        on_attempt=attempt,
    )


def _finish(run: WorkflowRun, mine: datetime, result: client.CallResult) -> bool:
    """Record the result if this worker still holds the run; count, audit and log it."""
    status = R.SUCCEEDED if result.ok else R.FAILED
    now = timezone.now()
    done = WorkflowRun.objects.filter(pk=run.pk, status=R.RUNNING, claimed_at=mine).update(
        status=status,
        response_status=result.status,
        response_body=result.body,
        attempts=result.attempts,
        error=result.error[:2000],
        finished_at=now,
    )
    if not done:
        return False
    run.status, run.response_status, run.response_body = status, result.status, result.body
    run.attempts, run.error, run.finished_at = result.attempts, result.error, now
    wf = run.workflow
    _record_end(run, result.outcome, response_status=result.status)
    log = logger.info if result.ok else logger.warning
    log(
        "workflow call finished",
        extra={
            "run": run.pk,
            "workflow": wf.pk,
            "outcome": result.outcome,
            "response_status": result.status,
            "attempts": result.attempts,
            "elapsed_ms": result.elapsed_ms,
            "error": result.error,
        },
    )
    return True


# --- lost calls ----------------------------------------------------------------------------------

#: Most runs the sweeper moves in one go (the next sweep takes the rest).
SWEEP_BATCH = 100
#: ``error`` of a run the sweeper gave up on.
LOST_NOT_CALLED = "lost: no worker made the call ({n} re-queues); the business system was not called"
LOST_MAYBE_CALLED = "lost: the worker stopped during the call ({n} re-queues); the business system may have received it"


def _maybe_called(run: WorkflowRun) -> bool:
    """A run given up on after an attempt had started: whether it went through is unknown."""
    return run.status == R.FAILED and run.error.startswith("lost:") and run.attempts > 0


def workflow_runs_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Hand lost calls to the ``webhooks`` queue again; give up on them after ``max_requeues()``.

    Lost: a queued run no worker has taken for ``requeue_seconds()`` (a broker dropped its task, or
    the process holding it stopped), or a running one whose claim is older than the longest its
    call can take (its worker died). Such a run is re-queued — it still needs a worker's claim
    before anything is called, so a slow worker and the re-queued task never both call — at most
    ``max_requeues()`` times; then it fails and the user is told, in their language, by the usual
    task (which retries the send). Every move is a conditional UPDATE on the state read here, so a
    worker claiming at the same moment either wins or makes the move a no-op. Returns
    ``{"requeued": n, "failed": m}``.
    """
    now = now or timezone.now()
    limit = max_requeues()
    waited = now - timedelta(seconds=requeue_seconds())
    shortest_lease = timedelta(seconds=client.call_budget_s(timeout_s=1, max_retries=0) + 60)
    candidates = (
        WorkflowRun.objects.filter(
            Q(status=R.QUEUED, queued_at__lt=waited)
            | Q(status=R.QUEUED, queued_at__isnull=True, created_at__lt=waited)  # queued before the sweeper
            | Q(status=R.RUNNING, claimed_at__lt=now - shortest_lease)
        )
        .filter(call_key="")  # a tool call is made again by its message's own re-run, not here
        .select_related("workflow__tenant")
        .order_by("pk")
    )
    moved = {"requeued": 0, "failed": 0}
    # Running calls within their lease are few (one per worker thread), so this read stays small.
    for run in list(candidates[: SWEEP_BATCH * 10]):
        if moved["requeued"] + moved["failed"] >= SWEEP_BATCH:
            break
        if run.status == R.RUNNING:
            if run.claimed_at and run.claimed_at >= now - timedelta(seconds=_lease_s(run.workflow)):
                continue  # a long call, still within what its worker may take
            as_read = WorkflowRun.objects.filter(pk=run.pk, status=R.RUNNING, claimed_at=run.claimed_at)
        else:
            as_read = WorkflowRun.objects.filter(pk=run.pk, status=R.QUEUED, queued_at=run.queued_at)
        if run.requeues < limit:
            if as_read.update(status=R.QUEUED, queued_at=now, requeues=F("requeues") + 1):
                workflow_run_enqueue(run)
                moved["requeued"] += 1
        elif _give_up(run, as_read, now):
            moved["failed"] += 1
    if moved["requeued"] or moved["failed"]:
        logger.warning("workflow runs swept", extra=moved)
    return moved


def _give_up(run: WorkflowRun, as_read: Any, now: datetime) -> bool:
    """Fail a lost run (if nobody took it meanwhile), count and audit it, and have the user told."""
    template = LOST_MAYBE_CALLED if run.attempts > 0 else LOST_NOT_CALLED
    error = template.format(n=run.requeues)
    if not as_read.update(status=R.FAILED, error=error, finished_at=now):
        return False
    run.status, run.error, run.finished_at = R.FAILED, error, now
    wf = run.workflow
    _record_end(run, "lost", response_status=None)
    logger.warning(
        "workflow call lost",
        extra={"run": run.pk, "workflow": wf.pk, "requeues": run.requeues, "attempts": run.attempts},
    )
    workflow_run_enqueue(run)  # a finished run's task only tells the user (once), retrying the send
    return True


# --- telling the user ----------------------------------------------------------------------------


def result_text(run: WorkflowRun, *, data: Any = None) -> str:
    """What the user is told about a finished run, in their language."""
    wf = run.workflow
    language = run.language or "en"
    if run.status != R.SUCCEEDED:
        return text_for("unknown" if _maybe_called(run) else "failed", language, name=wf.name)
    if data is None and run.response_body:
        try:
            data = json.loads(run.response_body)
        except ValueError:
            data = None
    template = (wf.reply_template or "").strip()
    text = render_reply(template, data, run_values(run), language=language) if template else ""
    return text.strip() or text_for("done", language, name=wf.name)


def workflow_run_notify(run: WorkflowRun, *, data: Any = None) -> None:
    """Store the result as an assistant turn (once) and send it to the user unless delivered,
    through the reply service the pipeline registered (``apps.workflows.delivery``). Raises
    ``PlatformError`` from the send."""
    reply_service().tell(run, lambda: result_text(run, data=data))


# --- the admin's test call -----------------------------------------------------------------------


def workflow_test_call(wf: Workflow) -> tuple[bool, str]:
    """One real call with sample values (no retries, no run stored, nobody told). Returns
    ``(ok, what happened)`` — status, time and what a user would have read — for the admin."""
    values = {**PAYLOAD_FIELDS, "run_id": 0, "workflow": wf.name, "tenant": wf.tenant.slug}
    try:
        payload = render_payload(wf.payload_template, values)
    except TemplateError as exc:
        return False, f"{wf.name}: the payload template is {exc}"
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    result = client.post_json(
        url=wf.url, body=body, run_ref="test", secret=wf.signing_secret or "", timeout_s=wf.timeout_s
    )
    if not result.ok:
        return False, f"{wf.name}: failed — {result.error} after {result.elapsed_ms} ms"
    template = (wf.reply_template or "").strip()
    said = render_reply(template, result.data, values) if template else text_for("done", "en", name=wf.name)
    return True, f"{wf.name}: HTTP {result.status} in {result.elapsed_ms} ms — the user would read: {said[:300]}"
