"""What makes a workflow valid (the admin form and ``manage.py apply`` both run ``Workflow.clean``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from apps.core.commands import ALIASES

from .client import blocked_reason
from .templating import PAYLOAD_FIELDS, TemplateError, render_payload, unknown_payload_placeholders

#: A command word, as the chat command parser reads one (``/ticket``, ``/工单``).
COMMAND_WORD = re.compile(r"^[A-Za-z\u4e00-\u9fff_]{1,32}$")


def normalize_command(value: str) -> str:
    """``"/Ticket"`` → ``"ticket"``: how command triggers are stored, compared and matched."""
    return (value or "").strip().lstrip("/／").strip().lower()


def normalize_keyword(value: str) -> str:
    return " ".join((value or "").split()).lower()


def trigger_key(trigger: str, value: str) -> str:
    return normalize_command(value) if trigger == "command" else normalize_keyword(value)


def workflow_errors(wf: Any) -> dict[str, list[str]]:
    """Field → problems of an unsaved or edited ``Workflow``; empty when it is fine."""
    from .models import MAX_RETRIES_LIMIT, TIMEOUT_LIMIT_S, Workflow

    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    value = (wf.trigger_value or "").strip()
    if not value:
        add("trigger_value", "Enter the command or keyword that starts this workflow.")
    elif wf.trigger == Workflow.Trigger.COMMAND:
        word = normalize_command(value)
        if not COMMAND_WORD.match(word):
            add(
                "trigger_value",
                f"'{value}' is not a command: use one word of letters (or Chinese characters), e.g. 'ticket' "
                "for /ticket — no spaces, digits or punctuation.",
            )
        elif word in ALIASES:
            add("trigger_value", f"/{word} is a built-in command; choose another word.")
    elif len(normalize_keyword(value)) < 2:
        add("trigger_value", "A keyword needs at least two characters.")

    scheme = urlsplit(wf.url or "").scheme.lower()
    if wf.url and scheme not in ("http", "https"):
        add("url", f"The URL must start with http:// or https:// (not '{scheme or wf.url[:20]}').")
    elif wf.url:
        blocked = blocked_reason(wf.url)
        if blocked and blocked != "invalid URL":  # (an invalid one gets the field's own message)
            add("url", f"Parley does not call this URL: {blocked}.")

    unknown = unknown_payload_placeholders(wf.payload_template)
    if unknown:
        add(
            "payload_template",
            "Unknown placeholder(s): "
            + ", ".join("{{" + name + "}}" for name in unknown)
            + ". Known: "
            + ", ".join("{{" + name + "}}" for name in PAYLOAD_FIELDS)
            + ".",
        )
    else:
        try:
            render_payload(wf.payload_template, PAYLOAD_FIELDS)
        except TemplateError as exc:
            add("payload_template", f"The payload template is {exc}.")

    if wf.max_retries is not None and wf.max_retries > MAX_RETRIES_LIMIT:
        add("max_retries", f"At most {MAX_RETRIES_LIMIT}.")
    if wf.timeout_s is not None and not 1 <= wf.timeout_s <= TIMEOUT_LIMIT_S:
        add("timeout_s", f"Between 1 and {TIMEOUT_LIMIT_S} seconds.")

    if wf.bot_id is not None and wf.tenant_id is not None and wf.bot.tenant_id != wf.tenant_id:
        add("bot", "This bot belongs to another tenant.")

    if value and wf.tenant_id is not None and wf.enabled and "trigger_value" not in errors:
        key = trigger_key(wf.trigger, value)
        same_scope = Workflow.objects.filter(tenant_id=wf.tenant_id, bot_id=wf.bot_id, trigger=wf.trigger, enabled=True)
        if wf.pk is not None:
            same_scope = same_scope.exclude(pk=wf.pk)
        for other in same_scope.only("name", "trigger", "trigger_value"):
            if trigger_key(other.trigger, other.trigger_value) == key:
                add("trigger_value", f"The enabled workflow '{other.name}' already uses this {wf.trigger}.")
                break
    return errors
