"""Celery worker hooks: the log context that travels with a task, and metrics in worker processes.

``apps.core.tasks.enqueue`` sends the caller's log context (tenant, bot, platform, trace id …) as
the ``parley_context`` message header. Here the worker puts it back around the task, so every log
line the task writes carries the same trace id as the webhook request that caused it. Connected
from ``config/celery.py`` by ``connect()``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import signals
from django.conf import settings

from . import logging as parley_logging
from . import metrics

logger = logging.getLogger(__name__)

# task id → (contextvar token, ...) so postrun restores exactly what prerun replaced. Keyed by task
# id because thread pools run many tasks at once; prerun and postrun of one task share its thread.
_tokens: dict[str, Any] = {}
_tokens_lock = threading.Lock()


def task_context(task: Any) -> dict[str, Any]:
    """The log context a task message carries: its ``parley_context`` header, or {}."""
    request = getattr(task, "request", None)
    carried = getattr(request, "parley_context", None)
    if carried is None:
        carried = (getattr(request, "headers", None) or {}).get("parley_context")
    return {k: v for k, v in carried.items() if isinstance(k, str)} if isinstance(carried, dict) else {}


def on_task_prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Bind the carried context (a fresh trace id when there is none, e.g. beat tasks) plus the task name."""
    fields = {**parley_logging.current_context(), **task_context(task or sender)}
    fields.setdefault("trace_id", parley_logging.new_trace_id())
    fields["task"] = getattr(task or sender, "name", "") or None
    token = parley_logging._context.set({k: v for k, v in fields.items() if v is not None})
    if task_id:
        with _tokens_lock:
            _tokens[task_id] = token


def on_task_postrun(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    with _tokens_lock:
        token = _tokens.pop(task_id or "", None)
    if token is not None:
        try:
            parley_logging._context.reset(token)
        except ValueError:  # created in another context (should not happen); leave a clean slate
            parley_logging._context.set({})


def on_worker_init(**_: Any) -> Any:
    """Serve a worker's own ``/metrics`` on ``PARLEY_WORKER_METRICS_PORT`` when set — for workers
    that do not share ``PROMETHEUS_MULTIPROC_DIR`` with a web process on the same host. Returns the
    running HTTP server (None when no port is set)."""
    port = settings.PARLEY_WORKER_METRICS_PORT
    if not port:
        return None
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prometheus_client import CONTENT_TYPE_LATEST

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # The queue gauges are cluster-wide and come from the web /metrics; not repeated here.
            body = metrics.exposition(include_queue=False)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per scrape would drown the worker's log

    addr = settings.PARLEY_WORKER_METRICS_ADDR
    server = ThreadingHTTPServer((addr, int(port)), Handler)
    threading.Thread(target=server.serve_forever, name="parley-metrics", daemon=True).start()
    logger.info("worker metrics on %s:%s/metrics", addr, port)
    return server


def on_worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())


def connect() -> None:
    """Connect the handlers (idempotent: Celery signals de-duplicate by dispatch uid)."""
    signals.task_prerun.connect(on_task_prerun, weak=False, dispatch_uid="parley-task-prerun")
    signals.task_postrun.connect(on_task_postrun, weak=False, dispatch_uid="parley-task-postrun")
    signals.worker_init.connect(on_worker_init, weak=False, dispatch_uid="parley-worker-init")
    signals.worker_process_shutdown.connect(
        on_worker_process_shutdown, weak=False, dispatch_uid="parley-worker-process-shutdown"
    )
