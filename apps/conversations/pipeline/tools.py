"""Tool calling: the bot's model may call tools, and answers with what they gave.

The tools a bot offers (``toolset``): its enabled workflows with the trigger "tool", the tools it may
use on its tool servers (MCP, ``apps.workflows.mcp``), and — when it has any of those — the
built-in ones. A bot without tools costs nothing here: its workflows are remembered per process.

The loop (``answer``): the model is asked with the tools offered; when it asks for tool calls
instead of answering, each call is checked (a known tool, arguments valid against its JSON
Schema — else the model is told what is wrong, nothing runs), the calls of one round run together
(each workflow call through its ``WorkflowRun``: stored first, signed, retried, guarded; each
tool-server call with its timeout), and the results go back to the model, round after round, until
it answers in text. Bounded by ``PARLEY_TOOL_MAX_ROUNDS`` rounds, ``PARLEY_TOOL_MAX_CALLS`` calls
and ``PARLEY_TOOL_DEADLINE_SECONDS`` for the whole answer; past a bound the model is asked once
more, without tools, to answer with what it has. The router's fallback chain applies to every
round. Tokens and cost are summed over the rounds; each call is kept on the reply
(``Message.tool_calls``, PII-masked) for the review.

A sensitive tool (a workflow that requires confirmation) is not called: the loop stops, the user is
asked to confirm the exact action in their language (the workflow confirmation flow, with its
expiry), and the user's "yes" or "no" (``resume``, from the workflow step) carries the answer on —
"yes" makes the call, "no" tells the model the user declined.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from jsonschema import Draft202012Validator

from apps.bots.routing import chain, failure_text
from apps.core import metrics
from apps.core.i18n import text_in
from apps.core.pii import mask_text
from apps.knowledge.prompt import source_label
from apps.knowledge.retrieval import knowledge_bases_for, search_bot
from apps.llm import router
from apps.llm.types import Answer, ToolCall
from apps.workflows import client as wf_client
from apps.workflows import tool_runs
from apps.workflows.mcp import bot_server_tools, call_server_tool
from apps.workflows.selectors import tool_workflows
from apps.workflows.services import confirm_seconds
from apps.workflows.texts import confirm_prompt

from ..handoff import handoff_port
from .context import build_context
from .turn import Turn

logger = logging.getLogger(__name__)

EMPTY_OBJECT: dict = {"type": "object", "properties": {}}
#: Characters of a tool's result kept on the reply for the review.
LOG_CHARS = 500


def max_rounds() -> int:
    return max(1, int(settings.PARLEY_TOOL_MAX_ROUNDS))


def max_calls() -> int:
    return max(1, int(settings.PARLEY_TOOL_MAX_CALLS))


def deadline_seconds() -> float:
    return max(1.0, float(settings.PARLEY_TOOL_DEADLINE_SECONDS))


@dataclass(frozen=True)
class Tool:
    name: str  # what the model calls it
    description: str
    parameters: dict
    kind: str  # workflow | mcp | builtin
    label: str  # what the user is shown ("Create ticket")
    sensitive: bool = False
    workflow_id: int | None = None
    server_id: int | None = None

    def offer(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def toolset(bot) -> list[Tool]:
    """The tools ``bot``'s model is offered (empty: the ordinary answer path, no tools at all)."""
    tools = [
        Tool(
            name=f.key,
            description=f.description,
            parameters=f.parameters or EMPTY_OBJECT,
            kind="workflow",
            label=f.name,
            sensitive=f.confirmation_required,
            workflow_id=f.id,
        )
        for f in tool_workflows(bot)
    ]
    tools += _server_tools(bot, taken={t.name for t in tools})
    if tools:
        builtins = list(BUILTINS)
        if knowledge_bases_for(bot):
            builtins.append(SEARCH_KNOWLEDGE)
        if handoff_port().model_may_hand_over(bot):
            builtins.append(HANDOFF)
        tools += [t for t in builtins if t.name not in {x.name for x in tools}]
    return tools


def _server_tools(bot, *, taken: set[str]) -> list[Tool]:
    found: list[Tool] = []
    for t in bot_server_tools(bot, Tool):
        if t.name not in taken:
            taken.add(t.name)
            found.append(t)
    return found


# --- built-in tools -------------------------------------------------------------------------------

BUILTINS = [
    Tool(
        name="current_datetime",
        description="The current date, time and weekday where this assistant works (its time zone).",
        parameters=EMPTY_OBJECT,
        kind="builtin",
        label="Current date and time",
    ),
]


#: Offered when the bot's handoff is enabled (apps.inbox): the model hands the conversation to a person.
HANDOFF = Tool(
    name="handoff_to_human",
    description=(
        "Hand this conversation to a human colleague: when the user asks for a person, is upset, or "
        "you cannot help. The user is told when a colleague will reply. Give the colleague a short note."
    ),
    parameters={
        "type": "object",
        "properties": {"note": {"type": "string", "description": "For the colleague: what the user needs"}},
        "required": ["note"],
    },
    kind="builtin",
    label="Hand to a person",
)


#: Offered when the bot has knowledge bases: the model searches them again, with its own words.
SEARCH_KNOWLEDGE = Tool(
    name="search_knowledge",
    description=(
        "Search this assistant's knowledge base (documents, policies, manuals) and get the most relevant "
        "passages. Use it for facts you are not given, with a short query in the user's language."
    ),
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for"}},
        "required": ["query"],
    },
    kind="builtin",
    label="Search the knowledge base",
)
#: Passages and characters of each given to the model at most.
SEARCH_PASSAGES = 5
SEARCH_CHARS = 1500


def _search(turn: Turn, query: str) -> tuple[bool, dict]:
    bot = turn.bot
    if bot.pii_policy == bot.PiiPolicy.MASK:
        query = mask_text(query)
    result = search_bot(bot, query)
    passages = [
        {"source": source_label(h), "text": h.text.strip()[:SEARCH_CHARS]} for h in result.used[:SEARCH_PASSAGES]
    ]
    if not passages:
        return True, {"ok": True, "passages": [], "note": "Nothing relevant was found."}
    return True, {"ok": True, "passages": passages}


def _builtin(turn: Turn, tool: Tool, arguments: dict) -> tuple[bool, dict]:
    if tool.name == "search_knowledge":
        return _search(turn, str(arguments.get("query", "")))
    if tool.name == "handoff_to_human":
        handoff = handoff_port().request_from_model(conversation=turn.conversation, note=str(arguments.get("note", "")))
        if handoff is None:
            return False, {"ok": False, "error": "Handing over to a person is not available here."}
        return True, {
            "ok": True,
            "result": "A colleague has been asked to take over, and the user has been told when they will "
            "reply. Say briefly that a colleague will follow up; do not answer further.",
        }
    if tool.name == "current_datetime":
        zone = ZoneInfo(turn.bot.tenant.timezone or settings.TIME_ZONE)
        now = datetime.now(zone)
        return True, {
            "datetime": now.isoformat(timespec="seconds"),
            "weekday": now.strftime("%A"),
            "timezone": str(zone),
        }
    return False, {"ok": False, "error": f"the built-in tool {tool.name} is not available"}


# --- the loop -------------------------------------------------------------------------------------


@dataclass
class Usage:
    """What every round cost, summed into the final answer."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal("0")
    attempts: list = field(default_factory=list)
    fallback_used: bool = False

    def add(self, answer: Answer) -> None:
        self.tokens_in += answer.tokens_in
        self.tokens_out += answer.tokens_out
        self.cost += answer.cost
        self.attempts += answer.attempts
        self.fallback_used = self.fallback_used or answer.fallback_used

    def into(self, answer: Answer) -> Answer:
        answer.tokens_in, answer.tokens_out, answer.cost = self.tokens_in, self.tokens_out, self.cost
        answer.attempts, answer.fallback_used = self.attempts, self.fallback_used
        return answer

    def as_state(self) -> dict:
        return {"tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "cost": str(self.cost)}

    @classmethod
    def from_state(cls, state: dict) -> Usage:
        return cls(
            tokens_in=int(state.get("tokens_in", 0)),
            tokens_out=int(state.get("tokens_out", 0)),
            cost=Decimal(str(state.get("cost", "0"))),
        )


@dataclass
class Loop:
    """One answer's loop as far as it went: what was added to the model's messages, the calls made."""

    added: list[dict] = field(default_factory=list)  # assistant tool-call turns and tool results
    log: list[dict] = field(default_factory=list)  # kept on the reply (Message.tool_calls)
    round: int = 0
    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    pending: Any = None  # the WorkflowRun waiting for the user's confirmation

    def state(self, call: ToolCall, assistant: dict, done: list[dict]) -> dict:
        """What a paused loop keeps on its pending run (the model's context is read again then)."""
        return {
            "call": call.as_dict(),
            "added": self.added,
            "assistant": assistant,
            "done": done,
            "log": self.log,
            "round": self.round,
            "calls": self.calls,
            "usage": self.usage.as_state(),
        }


def answer(turn: Turn, cancelled) -> Answer | None:
    """The answer to ``turn`` with the bot's tools (``turn.tools``). None when the loop paused for
    the user's confirmation: ``turn.tool_pending`` is the run, and its prompt has been sent."""
    loop = Loop()
    return _run(turn, loop, list(turn.messages), cancelled, started=time.monotonic())


def _run(turn: Turn, loop: Loop, messages: list[dict], cancelled, *, started: float) -> Answer | None:
    bot = turn.bot
    tools = turn.tools
    by_name = {t.name: t for t in tools}
    deadline = started + deadline_seconds()
    streamed = False

    def on_token(piece: str) -> None:
        nonlocal streamed
        streamed = True
        if turn.on_token is not None:
            turn.on_token(piece)

    while True:
        loop.round += 1
        offer = loop.round <= max_rounds() and loop.calls < max_calls() and time.monotonic() < deadline
        if streamed and turn.on_token is not None:
            turn.on_token("\n\n")
            streamed = False
        result = router.generate(
            turn.chain,
            messages + loop.added if offer else router.without_tool_turns(messages + loop.added),
            fail_text=failure_text(bot),
            language=turn.language,
            on_token=on_token if turn.on_token is not None else None,
            cancelled=cancelled,
            tenant=bot.tenant.slug,
            bot=bot.slug,
            tools=[t.offer() for t in tools] if offer else None,
        )
        loop.usage.add(result)
        if result.cancelled or result.failed or not result.tool_calls or not offer:
            final = loop.usage.into(result)
            final.tool_calls = []
            if not final.text.strip() and not final.cancelled:
                final.text, final.failed = failure_text(bot), True
            turn.tool_log = loop.log
            return final
        calls = result.tool_calls
        assistant = {"role": "assistant", "content": result.text, "tool_calls": [c.as_dict() for c in calls]}
        done, paused = _round(turn, loop, calls, by_name, deadline, assistant)
        if paused:
            return None
        loop.added += [assistant, *done]
        if cancelled():
            return Answer(text="", cancelled=True)


def _round(
    turn: Turn, loop: Loop, calls: list[ToolCall], by_name: dict[str, Tool], deadline: float, assistant: dict
) -> tuple[list[dict], bool]:
    """Run one round's calls (together) and return the tool-result messages, in the calls' order;
    True when the loop pauses for a confirmation (the prompt is sent)."""
    results: dict[str, tuple[str, dict]] = {}  # call id → (outcome, told)
    jobs: dict[str, tuple[Any, Any]] = {}  # call id → (what to finish with, the job)
    sensitive: list[tuple[ToolCall, Tool, dict]] = []
    entries: dict[str, dict] = {}
    for call in calls:
        tool = by_name.get(call.name)
        entry = {"round": loop.round, "tool": call.name, "arguments": _masked(call.arguments), "latency_ms": 0}
        entries[call.id] = entry
        if loop.calls >= max_calls():
            results[call.id] = ("limit", {"ok": False, "error": "Not run: the limit of tool calls for one answer."})
            continue
        if tool is None:
            known = ", ".join(sorted(by_name)) or "none"
            results[call.id] = ("unknown", {"ok": False, "error": f"There is no tool '{call.name}'. Tools: {known}."})
            continue
        entry["label"], entry["kind"] = tool.label, tool.kind
        arguments, problem = _arguments(call.arguments, tool.parameters)
        if problem:
            results[call.id] = ("invalid", {"ok": False, "error": f"Invalid arguments for {call.name}: {problem}"})
            continue
        loop.calls += 1
        if tool.kind == "builtin":
            ok, told = _builtin(turn, tool, arguments)
            results[call.id] = ("ok" if ok else "error", told)
        elif tool.kind == "workflow" and tool.sensitive:
            sensitive.append((call, tool, arguments))
        elif tool.kind == "workflow":
            run = _workflow_run(turn, tool, arguments)
            if run is None:
                results[call.id] = ("error", {"ok": False, "error": f"{tool.label} is not available now."})
                continue
            entry["run"] = run.pk
            prepared = tool_runs.tool_run_prepare(run)
            if prepared is None:  # finished before (this message handled again): its result
                ok, told = tool_runs.tool_result(run)
                results[call.id] = ("ok" if ok else "error", told)
            else:
                jobs[call.id] = (prepared, lambda p=prepared: tool_runs.tool_run_http(p, deadline_s=_left(deadline)))
        else:
            jobs[call.id] = (tool, lambda t=tool, a=arguments: _server_call(t, a, _left(deadline)))
    _show_calling(turn, [entries[cid].get("label", "") for cid in jobs])
    _run_together(jobs, results, entries, deadline)
    first_pending = sensitive[0] if sensitive else None
    for call, _tool, _args in sensitive[1:]:
        results[call.id] = (
            "limit",
            {"ok": False, "error": "Not run: one action needing the user's confirmation at a time; ask again after."},
        )
    done = []
    for call in calls:
        if first_pending is not None and call.id == first_pending[0].id:
            continue
        outcome, told = results[call.id]
        _record(turn, loop, entries[call.id], call, outcome, told)
        done.append(_result_message(call, told))
    if first_pending is None:
        return done, False
    call, tool, arguments = first_pending
    entry = entries[call.id]
    entry["outcome"] = "pending"
    loop.log.append(entry)
    metrics.TOOL_CALLS.labels(tool.kind, "pending").inc()
    run = _workflow_run(turn, tool, arguments, state=loop.state(call, assistant, done))
    if run is None:
        results[call.id] = ("error", {"ok": False, "error": f"{tool.label} is not available now."})
        done.append(_result_message(call, results[call.id][1]))
        return done, False
    if run.status != run.Status.PENDING_CONFIRMATION:
        # Decided already (this message handled again after the user's answer): its outcome.
        ok, told = tool_runs.tool_result(run)
        done.append(_result_message(call, told))
        return done, False
    turn.tool_pending = run
    minutes = max(1, confirm_seconds() // 60)
    turn.tool_prompt = confirm_prompt(tool.label, tool_runs.arguments_summary(arguments), turn.language, minutes)
    return done, True


#: The status the web chat shows while a tool runs.
CALLING = _("Calling {label}…")


def _show_calling(turn: Turn, labels: list[str]) -> None:
    if turn.on_status is None or not labels:
        return
    turn.on_status(text_in(turn.language, CALLING, label=", ".join(dict.fromkeys(labels))))


def _run_together(jobs: dict, results: dict, entries: dict, deadline: float) -> None:
    """The round's calls at once, each on its own thread; what is not back by the deadline counts as
    timed out (its run is failed here: the business system may still have received it)."""
    if not jobs:
        return
    pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="tool-call")
    started = time.monotonic()
    futures: dict[str, Future] = {cid: pool.submit(job) for cid, (_, job) in jobs.items()}
    pool.shutdown(wait=False)
    for cid, future in futures.items():
        subject = jobs[cid][0]
        try:
            value = future.result(timeout=_left(deadline))
        except FutureTimeout:
            value = wf_client.CallResult("timeout", 1, error="no answer before the answer's deadline")
        except Exception as exc:  # a tool server's error
            logger.warning("tool call failed", extra={"error": str(exc)[:300]})
            value = exc
        entries[cid]["latency_ms"] = int((time.monotonic() - started) * 1000)
        if isinstance(subject, tool_runs.Prepared):
            data = tool_runs.tool_run_finish(subject, value)
            subject.run.refresh_from_db()
            ok, told = tool_runs.tool_result(subject.run, data=data)
            outcome = "ok" if ok else ("timeout" if value.outcome == "timeout" else "error")
        elif isinstance(value, Exception):
            ok, told, outcome = False, {"ok": False, "error": f"{subject.label} failed: {value}"}, "error"
        else:
            ok, told = value
            outcome = "ok" if ok else "error"
        results[cid] = (outcome, told)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _server_call(tool: Tool, arguments: dict, timeout: float) -> tuple[bool, dict]:
    return call_server_tool(tool.server_id, tool.name, arguments, timeout=timeout)


def _workflow_run(turn: Turn, tool: Tool, arguments: dict, *, state: dict | None = None):
    return tool_runs.tool_run_get_or_create(
        workflow_id=tool.workflow_id,
        conversation=turn.conversation,
        inbound=turn.inbound,
        arguments=arguments,
        language=turn.language,
        key=tool_runs.call_key(tool.name, arguments),
        pending=state is not None,
        state=state,
    )


def _arguments(raw: str, schema: dict) -> tuple[dict, str]:
    """The call's arguments, and what is wrong with them ("" when nothing)."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}, "the arguments are not valid JSON"
    if not isinstance(value, dict):
        return {}, "the arguments must be a JSON object"
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path)
        return {}, (f"{where}: " if where else "") + first.message
    return value, ""


def _masked(raw: str) -> str:
    return mask_text(raw or "")[:LOG_CHARS]


def _result_message(call: ToolCall, told: dict) -> dict:
    return {
        "role": "tool",
        "tool_call_id": call.id,
        "name": call.name,
        "content": json.dumps(told, ensure_ascii=False),
    }


def _record(turn: Turn, loop: Loop, entry: dict, call: ToolCall, outcome: str, told: dict) -> None:
    entry["outcome"] = outcome
    entry["result"] = mask_text(json.dumps(told, ensure_ascii=False))[:LOG_CHARS]
    loop.log.append(entry)
    metrics.TOOL_CALLS.labels(entry.get("kind", "unknown"), outcome).inc()
    logger.info(
        "tool call",
        extra={"tool": call.name, "outcome": outcome, "round": loop.round, "latency_ms": entry.get("latency_ms", 0)},
    )


# --- after the user's "yes" or "no" ---------------------------------------------------------------


def resume(turn: Turn, run, *, confirmed: bool) -> Answer | None:
    """Carry on the answer a confirmation paused: make the call (``confirmed``) or tell the model
    the user declined, then ask the model again with the conversation as it is now. Returns the
    answer (``turn.tool_log`` set), or None when it paused again (``turn.tool_pending``)."""
    from .steps.generate import Canceller

    state = (run.context or {}).get("tool") or {}
    bot, conv = turn.bot, turn.conversation
    turn.language = run.language or turn.language or conv.language or "en"
    turn.chain = chain(bot, turn.models, turn.language)
    turn.tools = toolset(bot)
    turns = turn.storage.context_turns(conv, limit=bot.context_max_turns)
    turn.messages, _ = build_context(conv, turns, mask_pii=bot.pii_policy == bot.PiiPolicy.MASK, language=turn.language)
    loop = Loop(
        added=list(state.get("added") or []),
        log=list(state.get("log") or []),
        round=int(state.get("round", 1)),
        calls=int(state.get("calls", 0)),
        usage=Usage.from_state(state.get("usage") or {}),
    )
    call = ToolCall(**state["call"]) if state.get("call") else ToolCall(id="call", name=run.workflow.name)
    entry = {
        "round": loop.round,
        "tool": call.name,
        "label": run.workflow.name,
        "kind": "workflow",
        "arguments": _masked(call.arguments),
        "run": run.pk,
        "latency_ms": 0,
    }
    if confirmed:
        entry["confirmed_by"] = turn.inbound.pk
        started = time.monotonic()
        prepared = tool_runs.tool_run_prepare(run)
        data = None
        if prepared is not None:
            result = tool_runs.tool_run_http(prepared, deadline_s=deadline_seconds())
            data = tool_runs.tool_run_finish(prepared, result)
        run.refresh_from_db()
        ok, told = tool_runs.tool_result(run, data=data)
        entry["latency_ms"] = int((time.monotonic() - started) * 1000)
        outcome = "ok" if ok else "error"
    else:
        told = {"ok": False, "error": f"The user declined: {run.workflow.name} was not run. Nothing was done."}
        outcome = "declined"
    # The pending entry is replaced by how it ended.
    loop.log = [e for e in loop.log if not (e.get("outcome") == "pending" and e.get("tool") == call.name)]
    _record(turn, loop, entry, call, outcome, told)
    loop.added += [state.get("assistant") or {}, *(state.get("done") or []), _result_message(call, told)]
    return _run(turn, loop, turn.messages, Canceller(turn), started=time.monotonic())
