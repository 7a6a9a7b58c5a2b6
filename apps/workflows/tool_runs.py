"""A workflow called as a tool by a bot's model: the same run as a command's (a ``WorkflowRun`` row
stored first, signed, one ``X-Parley-Run-Id``, retries, the outbound guard), made while the
answer waits, its result given back to the model instead of told to the user.

One run per message and call: the call key is the tool's name and its arguments, so the same
message handled again (a worker died, the sweeper re-drove it) finds the run it started and never
calls the business system twice; a finished run's result is reused.

The database work happens on the caller's thread (``tool_run_prepare``, ``tool_run_finish``); only
the HTTP call (``tool_run_http``) may run on another, so several calls of one round go out together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import client
from .models import Workflow, WorkflowRun
from .services import _claim, _finish, confirm_seconds, result_text, run_values
from .templating import TemplateError, render_payload

R = WorkflowRun.Status
#: Characters of a business system's answer given back to the model at most.
RESULT_CHARS = 4000


def call_key(name: str, arguments: dict) -> str:
    """The tool and its arguments, hashed: the same call of the same message is one run."""
    canonical = json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{name}\n{canonical}".encode()).hexdigest()[:40]


def arguments_summary(arguments: dict) -> str:
    """The arguments as a user reads them in a confirmation prompt: "summary: printer broken, priority: high"."""
    parts = []
    for key, value in arguments.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {shown}")
    return ", ".join(parts)


def tool_run_get_or_create(
    *,
    workflow_id: int,
    conversation: Any,
    inbound: Any,
    arguments: dict,
    language: str,
    key: str,
    pending: bool,
    state: dict | None = None,
) -> WorkflowRun | None:
    """The run of this call of ``inbound`` (created once). ``pending``: it waits for the user's
    confirmation (``state`` is what the answer needs to go on afterwards). None when the workflow
    is gone or disabled."""
    existing = WorkflowRun.objects.filter(inbound=inbound, call_key=key).select_related("workflow__tenant").first()
    if existing is not None:
        return existing
    wf = Workflow.objects.filter(pk=workflow_id, enabled=True).select_related("tenant").first()
    if wf is None:
        return None
    channel = inbound.channel
    bot = channel.bot
    context = {
        "text": arguments_summary(arguments),
        "arguments": arguments,
        "user_id": inbound.user_id,
        "user_name": inbound.user_name,
        "conversation_id": conversation.pk,
        "tenant": bot.tenant.slug,
        "bot": bot.slug,
        "platform": channel.platform,
        "language": language,
        "workflow": wf.name,
    }
    if state is not None:
        context["tool"] = state
    now = timezone.now()
    run = WorkflowRun(
        workflow=wf,
        conversation=conversation,
        inbound=inbound,
        call_key=key,
        user_id=inbound.user_id,
        language=language,
        context=context,
        status=R.PENDING_CONFIRMATION if pending else R.QUEUED,
        expires_at=now + timedelta(seconds=confirm_seconds()) if pending else None,
        queued_at=None if pending else now,
    )
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:  # the same message, handled twice at once
        return WorkflowRun.objects.select_related("workflow__tenant").get(inbound=inbound, call_key=key)
    run.workflow = wf
    return run


@dataclass
class Prepared:
    """A run this thread holds, ready to call: its claim (the ownership token) and the request body."""

    run: WorkflowRun
    mine: datetime
    body: bytes


def tool_run_prepare(run: WorkflowRun) -> Prepared | None:
    """Claim a queued run (or one whose worker is presumed dead) and render its request. None when
    there is nothing to call: finished already, held by a live worker, or its template is broken
    (then it is failed here)."""
    if run.status not in (R.QUEUED, R.RUNNING):
        return None
    mine = _claim(run)
    if mine is None:
        run.refresh_from_db()
        return None
    run.status = R.RUNNING
    wf = run.workflow
    try:
        payload = render_payload(wf.payload_template, run_values(run))
    except TemplateError as exc:
        _finish(run, mine, client.CallResult("failed", 0, error=f"payload template {exc}"))
        return None
    WorkflowRun.objects.filter(pk=run.pk).update(request_body=payload)
    run.request_body = payload
    return Prepared(run, mine, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


def tool_run_http(prepared: Prepared, *, deadline_s: float | None = None) -> client.CallResult:
    """The HTTP call (signed, retried, through the outbound guard). No database: safe on any thread."""
    wf = prepared.run.workflow
    retries = wf.max_retries
    if deadline_s is not None:
        # No retry that could not finish before the answer's deadline.
        while retries > 0 and client.call_budget_s(timeout_s=wf.timeout_s, max_retries=retries) > deadline_s:
            retries -= 1
    return client.post_json(
        url=wf.url,
        body=prepared.body,
        run_ref=str(prepared.run.pk),
        secret=wf.signing_secret or "",
        timeout_s=wf.timeout_s,
        max_retries=retries,
    )


def tool_run_finish(prepared: Prepared, result: client.CallResult) -> Any:
    """Record the result (if this thread still holds the run). Returns the response's JSON, if any."""
    _finish(prepared.run, prepared.mine, result)
    return result.data


def tool_result(run: WorkflowRun, *, data: Any = None) -> tuple[bool, dict]:
    """``(ok, what the model is told)`` about a run."""
    wf = run.workflow
    if run.status == R.SUCCEEDED:
        if data is None and run.response_body:
            try:
                data = json.loads(run.response_body)
            except ValueError:
                data = run.response_body[:RESULT_CHARS]
        told: dict[str, Any] = {"ok": True, "result": _bounded(data)}
        if (wf.reply_template or "").strip():
            told["message"] = result_text(run, data=data if isinstance(data, (dict, list)) else None)
        return True, told
    if run.status == R.FAILED:
        return False, {"ok": False, "error": f"{wf.name} failed: {run.error or 'the business system refused it'}"}
    if run.status == R.CANCELLED:
        return False, {"ok": False, "error": f"{wf.name} was not run ({run.error or 'cancelled'})."}
    return False, {"ok": False, "error": f"{wf.name} is still being carried out; its result is not known yet."}


def _bounded(data: Any) -> Any:
    text = json.dumps(data, ensure_ascii=False)
    if len(text) <= RESULT_CHARS:
        return data
    return text[:RESULT_CHARS] + "…"
