"""Parley's own Prometheus metrics. Label values stay bounded: no user ids or message text.

Names are part of the operator contract (alert rules and dashboards in ``deploy/`` use them).

Several processes (gunicorn workers, Celery workers) each count on their own. With
``PROMETHEUS_MULTIPROC_DIR`` set (before any process imports ``prometheus_client``), every process
writes its samples to files in that directory and ``exposition()`` — served at ``/metrics`` —
adds them up, so one scrape shows the whole host. See docs/observability.md.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client opens its files there as soon as a metric is created: a process started
    # before anyone made the directory (a worker container, a fresh tmpfs) would fail to import.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

RESPONSE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

AI_RESPONSE_DURATION = Histogram(
    "ai_response_duration_seconds",
    "Time from an inbound message being accepted to its answer being sent.",
    ["tenant", "bot", "platform"],
    buckets=RESPONSE_BUCKETS,
)
MODEL_CALLS = Counter(
    "parley_model_calls_total",
    "Model calls by model config, provider and outcome (ok, timeout, error, rate_limited, breaker_open).",
    ["tenant", "model", "provider", "outcome"],
)
MODEL_CALL_DURATION = Histogram(
    "parley_model_call_duration_seconds",
    "Latency of model calls (to the first token when streaming).",
    ["tenant", "model", "provider"],
    buckets=RESPONSE_BUCKETS,
)
MODEL_TOKENS = Counter(
    "parley_model_tokens_total",
    "Tokens sent to and received from models.",
    ["tenant", "model", "provider", "direction"],
)
FALLBACKS = Counter("parley_fallbacks_total", "Answers that needed a fallback model.", ["tenant", "bot"])
CACHE_LOOKUPS = Counter(
    "parley_answer_cache_total",
    "Answer cache and knowledge-entry lookups by result (hit, miss).",
    ["tenant", "bot", "kind", "result"],
)
INBOUND_MESSAGES = Counter(
    "parley_inbound_messages_total",
    "Inbound messages by platform and outcome (accepted, duplicate, rejected_signature, rejected, rate_limited).",
    ["platform", "outcome"],
)
WEBHOOK_ACK = Histogram(
    "parley_webhook_ack_seconds", "Time to acknowledge a platform webhook.", ["platform"], buckets=FAST_BUCKETS
)
REPLIES = Counter(
    "parley_replies_total", "Replies sent to platforms by outcome (sent, failed).", ["platform", "outcome"]
)
DELIVERIES = Counter(
    "parley_deliveries_total",
    "Reply deliveries by outcome: delivered, retry (the platform failed, tried again later), failed (the "
    "platform refused it for good), expired (given up after PARLEY_DELIVERY_RETRY_HOURS).",
    ["outcome"],
)
WEBCHAT_SOCKETS = Gauge(
    "parley_webchat_sockets_open", "Open web-chat WebSocket connections.", multiprocess_mode="livesum"
)
WORKFLOW_CALLS = Counter("parley_workflow_calls_total", "Workflow webhook calls by outcome.", ["outcome"])
TOOL_CALLS = Counter(
    "parley_tool_calls_total",
    "Tool calls a model asked for, by kind (workflow, mcp, builtin) and outcome (ok, error, invalid, unknown, "
    "timeout, limit, pending, declined).",
    ["kind", "outcome"],
)
RATE_LIMITED = Counter("parley_rate_limited_total", "Messages refused by a rate limit.", ["scope"])
CONNECTORS_CONNECTED = Gauge(
    "parley_connector_channels_connected",
    "Long-connection channels whose connection is up, by platform (run_connectors).",
    ["platform"],
    multiprocess_mode="livesum",
)
CONNECTOR_RECONNECTS = Counter(
    "parley_connector_reconnects_total",
    "Long connections that ended and are made again (drops, failures, platform-requested refreshes).",
    ["platform"],
)
RATINGS = Counter(
    "parley_ratings_total",
    "End-user ratings recorded, by where they were given (a platform's buttons, webchat, feedback_page) "
    "and rating (up, down; neutral for three stars on the feedback page).",
    ["source", "rating"],
)


# --- Recording helpers: keep label values bounded whoever calls ------------------------------------
MODEL_OUTCOMES = ("ok", "timeout", "error", "rate_limited", "breaker_open")
INBOUND_OUTCOMES = ("accepted", "duplicate", "rejected_signature", "rejected", "rate_limited")
_LABEL_MAX = 64


def label(value: Any) -> str:
    """A label value: a short identifier (slug, model config name, platform); ``-`` when unknown.

    Labels only ever carry names an operator configured, never user ids or message text; the length
    cap keeps a misconfigured name from growing the series without bound."""
    text = str(value or "").strip()
    return text[:_LABEL_MAX] if text else "-"


def record_model_call(
    *,
    tenant: Any,
    model: Any,
    provider: Any,
    outcome: str,
    seconds: float | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
) -> None:
    """Count one model call attempt (outcome outside ``MODEL_OUTCOMES`` counts as ``error``), its
    latency (when the call reached the provider) and its tokens."""
    t, m, p = label(tenant), label(model), label(provider)
    MODEL_CALLS.labels(t, m, p, outcome if outcome in MODEL_OUTCOMES else "error").inc()
    if seconds is not None and outcome != "breaker_open":
        MODEL_CALL_DURATION.labels(t, m, p).observe(max(0.0, seconds))
    if tokens_in:
        MODEL_TOKENS.labels(t, m, p, "in").inc(tokens_in)
    if tokens_out:
        MODEL_TOKENS.labels(t, m, p, "out").inc(tokens_out)


def record_fallback(*, tenant: Any, bot: Any) -> None:
    """Count an answer that needed a model after the first one in the bot's chain."""
    FALLBACKS.labels(label(tenant), label(bot)).inc()


def record_cache_lookup(*, tenant: Any, bot: Any, kind: str, hit: bool) -> None:
    """Count an answer-cache (``kind="answer"``) or knowledge-entry (``kind="knowledge"``) lookup."""
    CACHE_LOOKUPS.labels(label(tenant), label(bot), label(kind), "hit" if hit else "miss").inc()


def record_rating(*, platform: Any, page: bool, stars: int) -> None:
    """Count one recorded end-user rating of an answer given on ``platform`` (its channel's). On the
    feedback page (``page``) the source is ``feedback_page``; otherwise the platform whose buttons
    were clicked, the web chat's as ``webchat``. 4–5 stars (a thumbs up) count as ``up``, 1–2 (a
    thumbs down) as ``down``, 3 as ``neutral``."""
    source = "feedback_page" if page else ("webchat" if platform == "web" else label(platform))
    RATINGS.labels(source, "up" if stars >= 4 else "down" if stars <= 2 else "neutral").inc()


# --- Scrape-time collectors ------------------------------------------------------------------------
_SCRAPE_COLLECTORS: list[Callable[[], Collector]] = []


def register_scrape_collector(factory: Callable[[], Collector]) -> None:
    """Add a collector that ``/metrics`` runs at every scrape, in the answering process (for figures
    read from the database, the same whichever process answers). Each app registers its own from its
    ``AppConfig.ready``, so this module knows none of them."""
    if factory not in _SCRAPE_COLLECTORS:
        _SCRAPE_COLLECTORS.append(factory)


_PID_FILE = re.compile(r"_(\d+)\.db$")


class MultiProcessCpuCollector(Collector):
    """``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` per live process (label
    ``pid``) of every process writing to the multiprocess directory on this host.

    prometheus_client's own process collector only describes the process that answers the scrape,
    which in multiprocess mode is a random gunicorn worker; this one reads ``/proc/<pid>/stat`` of
    each process that has metric files, so a CPU alert sees every worker. Series count is bounded by
    the number of live workers."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.ticks = float(os.sysconf("SC_CLK_TCK"))
            self.pagesize = os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            self.ticks, self.pagesize = 100.0, 4096

    def pids(self) -> list[int]:
        found = set()
        for entry in Path(self.path).glob("*.db"):
            match = _PID_FILE.search(entry.name)
            if match:
                found.add(int(match.group(1)))
        return sorted(found)

    def collect(self) -> Iterable[Metric]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", labels=["pid"]
        )
        rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", labels=["pid"])
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    parts = fh.read().split(b")")[-1].split()
            except OSError:
                continue  # the process has exited; its counters live on in the files
            cpu.add_metric([str(pid)], (float(parts[11]) + float(parts[12])) / self.ticks)
            rss.add_metric([str(pid)], float(parts[21]) * self.pagesize)
        return [cpu, rss]


def multiprocess_dir() -> str:
    """The multiprocess directory ('' when each process serves its own metrics)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def exposition(*, include_queue: bool = True) -> bytes:
    """The Prometheus text exposition for ``/metrics``.

    Multiprocess mode: the sum over every process's files (django-prometheus' request metrics and
    Parley's), plus CPU/memory of each live process. Single process: the default registry (which
    holds the process collector). Either way, the registered scrape-time collectors (the inbound queue
    gauges of apps.conversations) run once per scrape; ``include_queue=False`` leaves them out.
    """
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        registry.register(MultiProcessCpuCollector(path))
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if include_queue and _SCRAPE_COLLECTORS:
        scrape = CollectorRegistry()
        for factory in _SCRAPE_COLLECTORS:
            scrape.register(factory())
        body += generate_latest(scrape)
    return body


# --- Process lifecycle hooks for multiprocess mode -------------------------------------------------
def reset_multiprocess_dir() -> None:
    """Empty the multiprocess directory; call once when the process tree starts (gunicorn
    ``on_starting``), before any worker writes, so counters of a previous run are not summed in."""
    path = multiprocess_dir()
    if not path:
        return
    shutil.rmtree(path, ignore_errors=True)
    Path(path).mkdir(parents=True, exist_ok=True)


def mark_process_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (gunicorn ``child_exit``, Celery ``worker_process_shutdown``)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


# --- Sign-in ---------------------------------------------------------------------------------------
SIGNIN_FAILURES = Counter(
    "parley_signin_failures_total",
    "Refused sign-ins by method (password, oidc), way in (admin, api) and reason "
    "(invalid_credentials, locked, password_signin_off, not_staff, inactive, or the single sign-on reasons).",
    ["method", "via", "reason"],
)
SIGNIN_LOCKOUTS = Counter(
    "parley_signin_lockouts_total",
    "Password sign-in lockouts begun, by what was locked (username, address).",
    ["scope"],
)
SIGNIN_METHODS = ("password", "oidc")
SIGNIN_VIAS = ("admin", "api")
SIGNIN_LOCK_SCOPES = ("username", "address")


def record_signin_failure(*, method: str, via: str, reason: str) -> None:
    """Count one refused sign-in. Reasons are Parley's own fixed codes (never user input)."""
    SIGNIN_FAILURES.labels(
        method if method in SIGNIN_METHODS else "-", via if via in SIGNIN_VIAS else "-", label(reason)
    ).inc()


def record_signin_lockout(*, scope: str) -> None:
    """Count one lockout begun (``scope``: ``username`` or ``address``)."""
    SIGNIN_LOCKOUTS.labels(scope if scope in SIGNIN_LOCK_SCOPES else "-").inc()
