"""Handoff figures for Prometheus: how long users wait for a person, for the first human reply,
and for the handoff to end — per bot, and per agent (label ``agent``: the user's id, never a name).
Scrape-time: how many conversations wait in each tenant's queue right now."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.core.metrics import label

logger = logging.getLogger(__name__)

#: Seconds: people take minutes, not milliseconds.
HUMAN_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)

HANDOFFS = Counter(
    "parley_handoffs_total",
    "Handoff events by tenant, bot and event (requested, claimed, resolved, timed_out).",
    ["tenant", "bot", "event"],
)
WAIT = Histogram(
    "parley_handoff_wait_seconds",
    "From a user asking for a person to an agent claiming the conversation.",
    ["tenant", "bot"],
    buckets=HUMAN_BUCKETS,
)
FIRST_REPLY = Histogram(
    "parley_handoff_first_reply_seconds",
    "From a user asking for a person to the first human reply, by bot and agent (user id).",
    ["tenant", "bot", "agent"],
    buckets=HUMAN_BUCKETS,
)
RESOLUTION = Histogram(
    "parley_handoff_resolution_seconds",
    "From a user asking for a person to the conversation going back to the bot, by bot and agent "
    "(user id; 'none' when nobody claimed it).",
    ["tenant", "bot", "agent"],
    buckets=HUMAN_BUCKETS,
)


def _labels(handoff: Any) -> tuple[str, str]:
    return label(handoff.bot.tenant.slug), label(handoff.bot.slug)


def _agent(handoff: Any) -> str:
    return str(handoff.agent_id) if handoff.agent_id else "none"


def _seconds(start, end) -> float:
    return max(0.0, (end - start).total_seconds())


def record_event(handoff: Any, event: str) -> None:
    HANDOFFS.labels(*_labels(handoff), event).inc()


def record_claim(handoff: Any) -> None:
    record_event(handoff, "claimed")
    WAIT.labels(*_labels(handoff)).observe(_seconds(handoff.requested_at, handoff.claimed_at))


def record_first_reply(handoff: Any) -> None:
    FIRST_REPLY.labels(*_labels(handoff), _agent(handoff)).observe(
        _seconds(handoff.requested_at, handoff.first_reply_at)
    )


def record_end(handoff: Any) -> None:
    record_event(handoff, "timed_out" if handoff.ended_by == "timeout" else "resolved")
    RESOLUTION.labels(*_labels(handoff), _agent(handoff)).observe(_seconds(handoff.requested_at, handoff.resolved_at))


class HandoffQueueCollector(Collector):
    """Conversations waiting for a person, per tenant, and how long the oldest has waited."""

    def collect(self) -> Iterable[Metric]:
        from .models import Handoff

        depth = GaugeMetricFamily("parley_handoff_waiting", "Conversations waiting for a person.", labels=["tenant"])
        oldest = GaugeMetricFamily(
            "parley_handoff_oldest_waiting_seconds",
            "How long the oldest conversation waiting for a person has waited.",
            labels=["tenant"],
        )
        try:
            rows = list(
                Handoff.objects.filter(state=Handoff.State.WAITING)
                .order_by()
                .values("tenant__slug")
                .annotate(waiting=Count("id"), oldest=Min("requested_at"))
            )
        except DatabaseError:
            logger.warning("handoff metrics unavailable: database query failed", exc_info=True)
            return []
        now = timezone.now()
        for row in rows:
            depth.add_metric([label(row["tenant__slug"])], row["waiting"])
            oldest.add_metric([label(row["tenant__slug"])], _seconds(row["oldest"], now))
        return [depth, oldest]
