"""``python manage.py run_connectors``: long connections for channels in long-connection mode.

Runs until SIGTERM or SIGINT, then closes every connection and releases its channel locks so another
``run_connectors`` process takes the channels over at once. See docs/connectors.md.
"""

from __future__ import annotations

import asyncio
import os
import signal

from django.core.management.base import BaseCommand

from apps.channels.connectors.supervisor import Options, Supervisor
from apps.core import metrics


class Command(BaseCommand):
    help = "Hold the connections of long-connection channels (Slack Socket Mode, DingTalk Stream, Telegram polling)."

    def add_arguments(self, parser):
        defaults = Options()
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=float(os.environ.get("PARLEY_CONNECTORS_POLL_SECONDS", defaults.poll_seconds)),
            help="How often channel changes are picked up and free channels tried (default 10).",
        )
        parser.add_argument(
            "--lock-ttl",
            type=float,
            default=float(os.environ.get("PARLEY_CONNECTORS_LOCK_TTL", defaults.lock_ttl)),
            help="Seconds a dead process keeps its channels before another takes them over (default 30).",
        )
        parser.add_argument(
            "--backoff-max",
            type=float,
            default=float(os.environ.get("PARLEY_CONNECTORS_BACKOFF_MAX", defaults.backoff_max)),
            help="The longest wait between reconnects (default 60).",
        )
        parser.add_argument(
            "--backoff-base",
            type=float,
            default=float(os.environ.get("PARLEY_CONNECTORS_BACKOFF_BASE", defaults.backoff_base)),
            help="The first wait before a reconnect (default 1); it doubles per failure.",
        )

    def handle(self, *args, poll_seconds: float, lock_ttl: float, backoff_max: float, backoff_base: float, **options):
        from apps.core.celery_signals import on_worker_init

        on_worker_init()  # serves /metrics on PARLEY_WORKER_METRICS_PORT when set (own pod or host)
        supervisor = Supervisor(
            Options(
                poll_seconds=max(0.1, poll_seconds),
                lock_ttl=max(1.0, lock_ttl),
                backoff_base=max(0.01, backoff_base),
                backoff_max=max(0.01, backoff_max),
            )
        )
        try:
            asyncio.run(self._run(supervisor))
        finally:
            metrics.mark_process_dead(os.getpid())

    async def _run(self, supervisor: Supervisor) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await supervisor.run(stop)
