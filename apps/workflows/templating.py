"""Placeholders in workflow templates: ``{{name}}`` (spaces allowed: ``{{ name }}``).

The payload template is JSON. A placeholder inside a JSON string is replaced by the value's
escaped text, a bare placeholder by the value as a JSON literal (``"…"`` for text, a number for
ids), so whatever the user wrote — quotes, backslashes, newlines, ``"}`` — stays text inside one
JSON string and can never end it or add fields.

The reply template is plain text; its placeholders are dot paths into the business system's JSON
response (``{{id}}``, ``{{data.ticket.number}}``, ``{{items.0.id}}``), then the run's own values
(``{{text}}``, ``{{user_name}}`` …). A path the response does not have becomes a visible
"(not provided)" instead of an error.
"""

from __future__ import annotations

import json
import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")

#: Placeholders the payload template may use, with the sample values used to validate it.
PAYLOAD_FIELDS: dict[str, Any] = {
    "text": 'printer on floor 3 is "broken"\nsince Monday',
    "user_id": "ou_7d8a6e6df7621556ce0d21922b676706",
    "user_name": "Alice",
    "conversation_id": 42,
    "tenant": "acme",
    "bot": "helpdesk",
    "platform": "feishu",
    "language": "en",
    "run_id": 1042,
    "workflow": "Create ticket",
    "arguments": {"summary": "printer broken", "priority": "high"},
}

MISSING = {"en": "(not provided)", "zh": "（未提供）"}


class TemplateError(ValueError):
    """A template that cannot work; the message says why, for the admin."""


def placeholders(template: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(template or "")]


def unknown_payload_placeholders(template: str) -> list[str]:
    seen: list[str] = []
    for name in placeholders(template):
        if name not in PAYLOAD_FIELDS and name not in seen:
            seen.append(name)
    return seen


def default_payload(values: dict[str, Any]) -> dict[str, Any]:
    """The body sent when a workflow has no payload template: every field (``arguments`` only for a
    tool call: a command's body stays as it always was)."""
    return {
        name: values.get(name, "")
        for name in PAYLOAD_FIELDS
        if name != "arguments" or isinstance(values.get("arguments"), dict)
    }


def render_payload(template: str, values: dict[str, Any]) -> Any:
    """The JSON value of ``template`` with ``values`` filled in (see the module docstring).

    Raises ``TemplateError`` when the result is not valid JSON (naming line, column and problem).
    """
    if not (template or "").strip():
        return default_payload(values)
    text = _fill_json(template, values)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"not valid JSON once the placeholders are filled in: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc


def _fill_json(template: str, values: dict[str, Any]) -> str:
    out: list[str] = []
    in_string = False
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch == "{" and template.startswith("{{", i):
            m = PLACEHOLDER.match(template, i)
            if m is not None:
                value = values.get(m.group(1), "")
                if in_string:
                    # The escaped text without its quotes: it continues the string it is in.
                    out.append(
                        json.dumps(value if isinstance(value, str) else _as_text(value), ensure_ascii=False)[1:-1]
                    )
                else:
                    out.append(json.dumps(value, ensure_ascii=False))
                i = m.end()
                continue
        if in_string and ch == "\\" and i + 1 < n:
            out.append(template[i : i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        out.append(ch)
        i += 1
    return "".join(out)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def lookup(data: Any, path: str) -> tuple[bool, Any]:
    """``(True, value)`` at the dot ``path`` in ``data`` (list items by index), else ``(False, None)``."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current


def render_reply(template: str, response: Any, values: dict[str, Any], *, language: str = "en") -> str:
    """``template`` with response fields (then the run's own values) filled in; never raises."""
    missing = MISSING["zh" if (language or "").startswith("zh") else "en"]

    def repl(m: re.Match) -> str:
        path = m.group(1)
        found, value = lookup(response, path)
        if not found and path in values:
            found, value = True, values[path]
        if not found or value is None:
            return missing
        return _as_text(value)

    return PLACEHOLDER.sub(repl, template or "")
