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

from apps.workflows import services as workflows
from apps.workflows.selectors import active_workflows, match_trigger
from apps.workflows.texts import confirm_prompt, decision, text_for

from ..commands import parse_command
from ..models import Conversation, InboundMessage
from . import tools
from .context import answer_language
from .sending import reply_and_finish, send_reply
from .turn import CONTINUE, Turn

logger = logging.getLogger(__name__)
S = InboundMessage.Status
#: The message that starts a workflow and the result are turns the model may see later ("what was
#: my ticket number?"); prompts, "yes"/"no" and notices are not.
SOURCE = "workflow"
NOTE = "system"
_CJK = re.compile(r"[\u4e00-\u9fff]")


def run_workflows(turn: Turn) -> bool:
    """Handle ``turn.inbound`` if it concerns a workflow. Returns True when it was handled here
    (answered, or its call queued), False when the pipeline goes on with it as usual. Raises
    ``PlatformError`` when a reply could not be sent."""
    inbound, conv, storage = turn.inbound, turn.conversation, turn.storage
    flows = active_workflows(conv.bot)
    if turn.attempt > 1:
        earlier = workflows.run_by_inbound(inbound)
        if earlier is not None:  # handled before a crash: pick up where it stopped
            if earlier.call_key and earlier.confirmed_by_id == inbound.pk:
                _tool_answer(turn, earlier, confirmed=True)  # the confirmed tool call, and the answer
                return True
            if earlier.status == workflows.R.PENDING_CONFIRMATION and earlier.inbound_id == inbound.pk:
                # Its prompt was not stored (a stored one is re-sent by the pipeline's resume step).
                _prompt(turn, earlier)
                return True
            if earlier.status == workflows.R.QUEUED:
                workflows.workflow_run_enqueue(earlier)
            storage.finish(turn, S.ANSWERED)
            return True
    if not flows:
        return False
    if any(f.confirmation_required for f in flows):
        handled = _decide_pending(turn)
        if handled:
            return True
    match = match_trigger(flows, inbound.text)
    if match is None:
        return False
    language = _trigger_language(conv, inbound, match)
    storage.store_user_turn(turn, source=SOURCE, language=language)
    run = workflows.workflow_run_start(
        workflow_id=match.workflow.id, conversation=conv, inbound=inbound, text=match.text, language=language
    )
    if run is None:  # disabled or deleted a moment ago
        return False
    if run.status == workflows.R.PENDING_CONFIRMATION:
        _prompt(turn, run)
        return True
    storage.finish(turn, S.ANSWERED)
    return True


def _decide_pending(turn: Turn) -> bool:
    inbound, conv, storage = turn.inbound, turn.conversation, turn.storage
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
        _store_user_turn(turn, language)
        _answer(turn, text_for("expired" if expired else "cancelled", language, name=name), language)
        return True
    if said == "confirm" and run.call_key:
        _store_user_turn(turn, language)
        if workflows.workflow_run_confirm(run, inbound=inbound, enqueue=False):
            _tool_answer(turn, run, confirmed=True)
        elif workflows.is_expired(run) and workflows.workflow_run_cancel(
            run, reason="confirmation expired", outcome="expired"
        ):
            _answer(turn, text_for("expired", language, name=name), language)
        else:
            storage.finish(turn, S.ANSWERED)
        return True
    if said == "cancel" and run.call_key:
        _store_user_turn(turn, language)
        if workflows.workflow_run_cancel(run, reason="cancelled by the user"):
            _tool_answer(turn, run, confirmed=False)
        else:
            storage.finish(turn, S.ANSWERED)
        return True
    if said == "confirm":
        _store_user_turn(turn, language)
        # False: decided by another message of theirs a moment ago (a second "yes"), or expired
        # this very moment; either way nothing more to say here.
        if (
            not workflows.workflow_run_confirm(run, inbound=inbound)
            and workflows.is_expired(run)
            and workflows.workflow_run_cancel(run, reason="confirmation expired", outcome="expired")
        ):
            _answer(turn, text_for("expired", language, name=name), language)
            return True
        storage.finish(turn, S.ANSWERED)
        return True
    if said == "cancel":
        _store_user_turn(turn, language)
        if workflows.workflow_run_cancel(run, reason="cancelled by the user"):
            _answer(turn, text_for("cancelled", language, name=name), language)
        else:
            storage.finish(turn, S.ANSWERED)
        return True
    # Anything else: the prompt is void, and the message is handled as usual after a short notice.
    if workflows.workflow_run_cancel(run, reason="the user wrote something else"):
        _notice(turn, text_for("superseded", answer_language(conv, inbound.text), name=name))
    return False


def _tool_answer(turn: Turn, run, *, confirmed: bool) -> None:
    """A model's tool call the user has just confirmed (made now) or refused: the model is asked
    again with the result, and its answer is this message's reply."""
    from .steps import deliver, store

    answer = tools.resume(turn, run, confirmed=confirmed)
    if answer is None:  # the model asked for another sensitive call: its prompt
        _answer(turn, turn.tool_prompt, turn.language)
        return
    if answer.cancelled:
        turn.drop_stream()
        turn.storage.finish(turn, S.INTERRUPTED)
        return
    turn.answer = answer
    if store.run(turn) is CONTINUE:
        deliver.run(turn)


def _store_user_turn(turn: Turn, language: str) -> None:
    """The user's "yes"/"no" (a turn the model never sees), in the workflow's language."""
    turn.storage.store_user_turn(turn, source=NOTE, language=language)


def _prompt(turn: Turn, run) -> None:
    minutes = max(1, workflows.confirm_seconds() // 60)
    text = confirm_prompt(run.workflow.name, (run.context or {}).get("text", ""), run.language, minutes)
    _answer(turn, text, run.language)


def _trigger_language(conv: Conversation, inbound: InboundMessage, match) -> str:
    """The language a workflow talks to its user in: the pinned one (``/lang``), else the one of
    the command's text (the command word says nothing, unless it is Chinese: ``/工单``), else the
    conversation's, else the one of the message (keywords)."""
    if conv.language_pinned and conv.language:
        return conv.language
    if match.workflow.trigger != "command":
        return answer_language(conv, inbound.text)
    cmd = parse_command(inbound.text)
    if cmd is not None and _CJK.search(cmd.raw_name):
        return "zh"
    return answer_language(conv, match.text)


def _answer(turn: Turn, text: str, language: str) -> None:
    """Store and send the reply to this message (and finish it)."""
    reply_and_finish(turn, text=text, source=NOTE, status=S.ANSWERED, language=language)


def _notice(turn: Turn, text: str) -> None:
    """Send a short note before the message's own answer (stored as a turn, not as its reply)."""
    note = turn.storage.store_note(turn, text=text, source=NOTE)
    send_reply(turn.storage, turn.inbound, note)
