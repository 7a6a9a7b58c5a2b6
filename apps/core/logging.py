"""JSON log lines with request/message context, PII masked.

Every line is one JSON object: timestamp, level, logger, message and — where known — tenant, bot,
platform, conversation and trace_id. Context is carried in contextvars, set with ``log_context``
in views, tasks and consumers; a trace id travels with a message from webhook to reply (it is
stored on the InboundMessage and restored by the task that handles it).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from .pii import mask_text

CONTEXT_FIELDS = ("tenant", "bot", "platform", "conversation", "trace_id")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "parley_log_context",
    default={},  # noqa: B039 - never mutated; replaced with .set()
)


def new_trace_id() -> str:
    return uuid.uuid4().hex


def current_context() -> dict[str, Any]:
    return dict(_context.get())


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (None values are ignored) to every log line written inside the block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context until it is reset (for code without a ``with`` block)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message and extra string fields are PII-masked."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _RESERVED or key.startswith("_"):
                continue
            if isinstance(value, str):
                value = mask_text(value)
            elif not isinstance(value, int | float | bool | type(None)):
                value = mask_text(str(value))
            payload[key] = value
        if record.exc_info:
            payload["exception"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """One short line per record for a person watching ``manage.py run`` in a terminal:
    ``09:37:46 INFO  message  (tenant=acme trace=1a2b3c4d)``, the level in colour when ``colour``.
    The message and the context fields are PII-masked as in the JSON lines."""

    COLOURS = {"DEBUG": "2", "INFO": "36", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}

    def __init__(self, *args: Any, colour: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = f"{record.levelname:<7}"
        if self.colour:
            level = f"\033[{self.COLOURS.get(record.levelname, '0')}m{level}\033[0m"
        context = [f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if getattr(record, key, None)]
        context = [c[: c.index("=") + 9] if c.startswith("trace_id=") else c for c in context]
        line = f"{when} {level} {mask_text(record.getMessage())}"
        if record.name.startswith(("apps.", "config.")) or record.levelno >= logging.WARNING:
            line += f"  [{record.name}]"
        if context:
            line += f"  ({mask_text(' '.join(context))})"
        if record.exc_info:
            line += "\n" + mask_text(self.formatException(record.exc_info))
        return line


class SkipStaticFiles(logging.Filter):
    """Drops the access-log lines of static files (``/static/…``, ``/favicon.ico``): a page load
    brings a dozen of them and they bury what matters."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.conf import settings

        args = record.args if isinstance(record.args, tuple) else ()
        path = str(args[2]) if len(args) >= 3 else ""
        return not path.startswith((settings.STATIC_URL, "/favicon.ico"))
