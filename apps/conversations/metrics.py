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

from .models import InboundMessage

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
