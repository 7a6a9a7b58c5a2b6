"""The workflow step: a message that starts a workflow, or answers a workflow's confirmation prompt.

Runs after the session step and before the commands. For a bot without enabled workflows it costs
nothing (the bot's workflows are remembered per process, see ``apps.workflows.selectors``).

* A pending confirmation of this sender in this conversation is decided by their next message:
  "yes"/"confirm"/"确认"/"是" queues the call, "no"/"cancel"/"取消"/"否" cancels it; anything else
  cancels it (with a short notice) and is then handled as usual. An expired one is cancelled and
  never run.
* A message that starts a workflow (``/ticket …`` or a keyword) is stored as the user's turn, not
  sent to the model: the user is asked to confirm, or the call is queued. The result is told later
  by the ``webhooks`` task through the same reply path.
"""

from __future__ import annotations

import logging
import re

from apps.core.language import detect_language
from apps.workflows import services as workflows
from apps.workflows.selectors import active_workflows, match_trigger
from apps.workflows.texts import confirm_prompt, decision, text_for

from ..commands import parse_command
from ..models import Conversation, InboundMessage, Message
from .claim import Claim
from .deliver import deliver, send_reply, store_reply
from .session import store_user_turn

logger = logging.getLogger(__name__)
S = InboundMessage.Status
#: The message that starts a workflow and the result are turns the model may see later ("what was
#: my ticket number?"); prompts, "yes"/"no" and notices are not.
SOURCE = "workflow"
NOTE = "system"
_CJK = re.compile(r"[\u4e00-\u9fff]")


def run_workflows(claim: Claim, conv: Conversation) -> bool:
    """Handle ``claim.inbound`` if it concerns a workflow. Returns True when it was handled here
    (answered, or its call queued), False when the pipeline goes on with it as usual. Raises
    ``PlatformError`` when a reply could not be sent."""
    inbound = claim.inbound
    flows = active_workflows(conv.bot)
    if claim.attempt > 1:
        earlier = workflows.run_by_inbound(inbound)
        if earlier is not None:  # handled before a crash: pick up where it stopped
            if earlier.status == workflows.R.PENDING_CONFIRMATION and earlier.inbound_id == inbound.pk:
                # Its prompt was not stored (a stored one is re-sent by the pipeline's resume step).
                _prompt(claim, conv, earlier)
                return True
            if earlier.status == workflows.R.QUEUED:
                workflows.workflow_run_enqueue(earlier)
            claim.finish(S.ANSWERED)
            return True
    if not flows:
        return False
    if any(f.confirmation_required for f in flows):
        handled = _decide_pending(claim, conv)
        if handled:
            return True
    match = match_trigger(flows, inbound.text)
    if match is None:
        return False
    language = _trigger_language(conv, inbound, match)
    store_user_turn(conv, inbound, language=language, source=SOURCE, first_attempt=claim.attempt == 1)
    run = workflows.workflow_run_start(
        workflow_id=match.workflow.id, conversation=conv, inbound=inbound, text=match.text, language=language
    )
    if run is None:  # disabled or deleted a moment ago
        return False
    if run.status == workflows.R.PENDING_CONFIRMATION:
        _prompt(claim, conv, run)
        return True
    claim.finish(S.ANSWERED)
    return True


def _decide_pending(claim: Claim, conv: Conversation) -> bool:
    inbound = claim.inbound
    run = workflows.pending_run(conversation=conv, user_id=inbound.user_id)
    if run is None:
        return False
    said = decision(inbound.text)
    language = run.language or conv.language or "en"
    name = run.workflow.name
    if workflows.is_expired(run) or not run.workflow.enabled:
        expired = run.workflow.enabled
        cancelled = workflows.workflow_run_cancel(
            run,
            reason="confirmation expired" if expired else "the workflow was disabled",
            outcome="expired" if expired else "cancelled",
        )
        if said is None or not cancelled:
            return False
        store_user_turn(conv, inbound, language=language, source=NOTE, first_attempt=claim.attempt == 1)
        _answer(claim, conv, text_for("expired" if expired else "cancelled", language, name=name), language)
        return True
    if said == "confirm":
        store_user_turn(conv, inbound, language=language, source=NOTE, first_attempt=claim.attempt == 1)
        # False: decided by another message of theirs a moment ago (a second "yes"), or expired
        # this very moment; either way nothing more to say here.
        if (
            not workflows.workflow_run_confirm(run, inbound=inbound)
            and workflows.is_expired(run)
            and workflows.workflow_run_cancel(run, reason="confirmation expired", outcome="expired")
        ):
            _answer(claim, conv, text_for("expired", language, name=name), language)
            return True
        claim.finish(S.ANSWERED)
        return True
    if said == "cancel":
        store_user_turn(conv, inbound, language=language, source=NOTE, first_attempt=claim.attempt == 1)
        if workflows.workflow_run_cancel(run, reason="cancelled by the user"):
            _answer(claim, conv, text_for("cancelled", language, name=name), language)
        else:
            claim.finish(S.ANSWERED)
        return True
    # Anything else: the prompt is void, and the message is handled as usual after a short notice.
    if workflows.workflow_run_cancel(run, reason="the user wrote something else"):
        _notice(inbound, conv, text_for("superseded", _language(conv, inbound.text), name=name))
    return False


def _prompt(claim: Claim, conv: Conversation, run) -> None:
    minutes = max(1, workflows.confirm_seconds() // 60)
    text = confirm_prompt(run.workflow.name, (run.context or {}).get("text", ""), run.language, minutes)
    _answer(claim, conv, text, run.language)


def _trigger_language(conv: Conversation, inbound: InboundMessage, match) -> str:
    """The language a workflow talks to its user in: the pinned one (``/lang``), else the one of
    the command's text (the command word says nothing, unless it is Chinese: ``/工单``), else the
    conversation's, else the one of the message (keywords)."""
    if conv.language_pinned and conv.language:
        return conv.language
    if match.workflow.trigger != "command":
        return _language(conv, inbound.text)
    cmd = parse_command(inbound.text)
    if cmd is not None and _CJK.search(cmd.raw_name):
        return "zh"
    return _language(conv, match.text)


def _language(conv: Conversation, text: str) -> str:
    if conv.language_pinned and conv.language:
        return conv.language
    return detect_language(text, default=conv.language or "en")


def _answer(claim: Claim, conv: Conversation, text: str, language: str) -> None:
    """Store and send the reply to this message (and finish it)."""
    reply = store_reply(claim, conv, text=text, source=NOTE, language=language)
    if reply is None:
        return
    deliver(claim, reply, status=S.ANSWERED)


def _notice(inbound: InboundMessage, conv: Conversation, text: str) -> None:
    """Send a short note before the message's own answer (stored as a turn, not as its reply)."""
    note = Message.objects.create(
        conversation=conv, inbound=inbound, role=Message.Role.ASSISTANT, text=text, source=NOTE
    )
    send_reply(inbound, note)
