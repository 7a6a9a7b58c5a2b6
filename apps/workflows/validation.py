"""What makes a workflow valid (the admin form and ``manage.py apply`` both run ``Workflow.clean``)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.translation import gettext, gettext_lazy

from apps.core.commands import ALIASES
from apps.core.fields import endpoint_problem

from .client import blocked_reason
from .templating import PAYLOAD_FIELDS, TemplateError, render_payload, unknown_payload_placeholders

#: A trigger in a sentence ("already uses this keyword").
TRIGGER_WORDS = {"command": gettext_lazy("command"), "keyword": gettext_lazy("keyword"), "tool": gettext_lazy("tool")}

#: A command word, as the chat command parser reads one (``/ticket``, ``/工单``).
COMMAND_WORD = re.compile(r"^[A-Za-z\u4e00-\u9fff_]{1,32}$")


def normalize_command(value: str) -> str:
    """``"/Ticket"`` → ``"ticket"``: how command triggers are stored, compared and matched."""
    return (value or "").strip().lstrip("/／").strip().lower()


def normalize_keyword(value: str) -> str:
    return " ".join((value or "").split()).lower()


#: A tool's name, as both model APIs accept one.
TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
#: Names the built-in tools take (docs/tools.md).
BUILTIN_TOOL_NAMES = frozenset({"current_datetime", "search_knowledge", "handoff_to_human"})


def trigger_key(trigger: str, value: str) -> str:
    if trigger == "command":
        return normalize_command(value)
    if trigger == "tool":
        return (value or "").strip()
    return normalize_keyword(value)


def parameters_errors(schema: Any) -> list[str]:
    """What is wrong with a tool's ``parameters`` (a JSON Schema object), for the admin."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if schema in (None, {}):
        return []
    if not isinstance(schema, dict):
        return [gettext('Enter a JSON object (a JSON Schema), e.g. {"type": "object", "properties": {…}}.')]
    if schema.get("type") != "object":
        return [gettext('The arguments must be an object: the schema needs "type": "object".')]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        if where:
            said = gettext("Not a valid JSON Schema at %(where)s: %(problem)s")
            return [said % {"where": where, "problem": exc.message}]
        return [gettext("Not a valid JSON Schema: %(problem)s") % {"problem": exc.message}]
    return []


def url_problems(url: str) -> list[str]:
    """What is wrong with a URL Parley is to call: the one endpoint check the models' and channels'
    addresses get too (``apps.core.fields.endpoint_problem``), then the outbound guard."""
    if not url:
        return []
    problem = endpoint_problem(url)
    if problem:
        return [problem]
    blocked = blocked_reason(url)
    return [gettext("Parley does not call this URL: %(reason)s.") % {"reason": blocked}] if blocked else []


def workflow_errors(wf: Any) -> dict[str, list[str]]:
    """Field → problems of an unsaved or edited ``Workflow``; empty when it is fine."""
    from .models import MAX_RETRIES_LIMIT, TIMEOUT_LIMIT_S, Workflow

    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    value = (wf.trigger_value or "").strip()
    if not value:
        add("trigger_value", gettext("Enter the command or keyword that starts this workflow."))
    elif wf.trigger == Workflow.Trigger.COMMAND:
        word = normalize_command(value)
        if not COMMAND_WORD.match(word):
            add(
                "trigger_value",
                gettext(
                    "'%(value)s' is not a command: use one word of letters (or Chinese characters), e.g. 'ticket' "
                    "for /ticket — no spaces, digits or punctuation."
                )
                % {"value": value},
            )
        elif word in ALIASES:
            add("trigger_value", gettext("/%(word)s is a built-in command; choose another word.") % {"word": word})
    elif wf.trigger == Workflow.Trigger.TOOL:
        if not TOOL_NAME.match(value):
            add(
                "trigger_value",
                gettext(
                    "'%(value)s' is not a tool name: start with a letter, then letters, digits, _ or - "
                    "(at most 64), e.g. create_ticket."
                )
                % {"value": value},
            )
        elif value in BUILTIN_TOOL_NAMES:
            add("trigger_value", gettext("%(value)s is a built-in tool; choose another name.") % {"value": value})
        if not (wf.description or "").strip():
            add("description", gettext("Tell the model what this tool does and when to use it."))
    elif len(normalize_keyword(value)) < 2:
        add("trigger_value", gettext("A keyword needs at least two characters."))
    for problem in parameters_errors(wf.parameters):
        add("parameters", problem)

    for problem in url_problems(wf.url):
        add("url", problem)

    unknown = unknown_payload_placeholders(wf.payload_template)
    if unknown:
        add(
            "payload_template",
            gettext("Unknown placeholder(s): %(unknown)s. Known: %(known)s.")
            % {
                "unknown": ", ".join("{{" + name + "}}" for name in unknown),
                "known": ", ".join("{{" + name + "}}" for name in PAYLOAD_FIELDS),
            },
        )
    else:
        try:
            render_payload(wf.payload_template, PAYLOAD_FIELDS)
        except TemplateError as exc:
            add("payload_template", gettext("The payload template is %(problem)s.") % {"problem": exc})

    if wf.max_retries is not None and wf.max_retries > MAX_RETRIES_LIMIT:
        add("max_retries", gettext("At most %(limit)s.") % {"limit": MAX_RETRIES_LIMIT})
    if wf.timeout_s is not None and not 1 <= wf.timeout_s <= TIMEOUT_LIMIT_S:
        add("timeout_s", gettext("Between 1 and %(limit)s seconds.") % {"limit": TIMEOUT_LIMIT_S})

    if wf.bot_id is not None and wf.tenant_id is not None and wf.bot.tenant_id != wf.tenant_id:
        add("bot", gettext("This bot belongs to another tenant."))

    if value and wf.tenant_id is not None and wf.enabled and "trigger_value" not in errors:
        key = trigger_key(wf.trigger, value)
        same_scope = Workflow.objects.filter(tenant_id=wf.tenant_id, bot_id=wf.bot_id, trigger=wf.trigger, enabled=True)
        if wf.pk is not None:
            same_scope = same_scope.exclude(pk=wf.pk)
        for other in same_scope.only("name", "trigger", "trigger_value"):
            if trigger_key(other.trigger, other.trigger_value) == key:
                add(
                    "trigger_value",
                    gettext("The enabled workflow '%(name)s' already uses this %(trigger)s.")
                    % {"name": other.name, "trigger": TRIGGER_WORDS.get(wf.trigger, wf.trigger)},
                )
                break
    return errors


def parse_headers(text: str) -> tuple[dict[str, str], str]:
    """A tool server's headers (a JSON object of text values) and what is wrong with them ("")."""
    if not (text or "").strip():
        return {}, ""
    try:
        value = json.loads(text)
    except ValueError:
        return {}, gettext('Enter the headers as a JSON object, e.g. {"Authorization": "Bearer …"}.')
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return {}, gettext("The headers must be a JSON object whose values are text.")
    return value, ""


def tool_server_errors(server: Any) -> dict[str, list[str]]:
    """Field → problems of a tool server (its URL, headers and timeout)."""
    from .models import TIMEOUT_LIMIT_S

    errors: dict[str, list[str]] = {}
    if problems := url_problems(server.url):
        errors["url"] = problems
    problem = parse_headers(server.headers)[1]
    if problem:
        errors["headers"] = [problem]
    if server.timeout_s is not None and not 1 <= server.timeout_s <= TIMEOUT_LIMIT_S:
        errors["timeout_s"] = [gettext("Between 1 and %(limit)s seconds.") % {"limit": TIMEOUT_LIMIT_S}]
    return errors
