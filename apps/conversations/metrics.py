"""Scrape-time figures of the conversations app, registered with ``apps.core.metrics`` in ``apps.py``."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.channels.platforms.registry import platforms
from apps.core.metrics import label

from .models import DeliveryState, InboundMessage, Message

logger = logging.getLogger(__name__)


class InboundQueueCollector(Collector):
    """Messages accepted but not yet picked up (status ``received``), per platform: how many and how
    long the oldest has waited. Read from the database at scrape time, so it is the cluster-wide
    truth whichever process is scraped: one grouped query on the indexed ``status`` column, which
    only touches the (normally few) waiting rows."""

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "parley_inbound_queue_depth", "Accepted inbound messages waiting to be handled.", labels=["platform"]
        )
        oldest = GaugeMetricFamily(
            "parley_inbound_oldest_waiting_seconds",
            "Age of the oldest accepted inbound message still waiting to be handled (0 when none waits).",
            labels=["platform"],
        )
        try:
            rows = list(
                InboundMessage.objects.filter(status=InboundMessage.Status.RECEIVED)
                .order_by()
                .values("channel__platform")
                .annotate(waiting=Count("id"), oldest=Min("received_at"))
            )
        except DatabaseError:
            logger.warning("queue metrics unavailable: database query failed", exc_info=True)
            return []
        now = timezone.now()
        seen = set()
        for row in rows:
            platform = label(row["channel__platform"])
            seen.add(platform)
            depth.add_metric([platform], row["waiting"])
            oldest.add_metric([platform], max(0.0, (now - row["oldest"]).total_seconds()))
        # Known platforms report an explicit 0, so dashboards show "nothing waiting" rather than "no data".
        for platform in sorted({*platforms(), "web"} - seen):
            depth.add_metric([platform], 0)
            oldest.add_metric([platform], 0)
        return [depth, oldest]


class UndeliveredCollector(Collector):
    """Replies waiting for a retry because their platform did not take them (``pending``), and how
    long the oldest has waited since it was made: a growing backlog means a platform is down or
    refusing Parley (alert rules in deploy/prometheus/alerts.yml). One query on a partial index
    that holds only those replies."""

    def collect(self) -> Iterable[Metric]:
        count = GaugeMetricFamily(
            "parley_undelivered_replies", "Replies stored but not yet delivered, waiting for a retry."
        )
        oldest = GaugeMetricFamily(
            "parley_undelivered_oldest_seconds",
            "Age of the oldest reply still waiting for a retry (0 when none waits).",
        )
        try:
            row = (
                Message.objects.filter(delivery_state=DeliveryState.PENDING, next_delivery_at__isnull=False)
                .order_by()
                .aggregate(waiting=Count("id"), oldest=Min("created_at"))
            )
        except DatabaseError:
            logger.warning("delivery metrics unavailable: database query failed", exc_info=True)
            return []
        count.add_metric([], row["waiting"] or 0)
        age = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        oldest.add_metric([], max(0.0, age))
        return [count, oldest]
