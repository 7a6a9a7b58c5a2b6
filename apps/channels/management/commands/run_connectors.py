"""``python manage.py run_connectors``: long connections for channels in long-connection mode.

Runs until SIGTERM or SIGINT, then closes every connection and releases its channel locks so another
``run_connectors`` process takes the channels over at once. See docs/connectors.md.
"""

from __future__ import annotations

import asyncio
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from apps.channels.connectors.supervisor import Supervisor, options_from_env
from apps.core import metrics


class Command(BaseCommand):
    help = "Hold the connections of long-connection channels (Slack, DingTalk, Feishu, Telegram)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--poll-seconds",
            type=float,
            default=None,
            help="How often channel changes are picked up and free channels tried (default 10).",
        )
        parser.add_argument(
            "--lock-ttl",
            type=float,
            default=None,
            help="Seconds a dead process keeps its channels before another takes them over (default 30).",
        )
        parser.add_argument(
            "--backoff-max",
            type=float,
            default=None,
            help="The longest wait between reconnects (default 60).",
        )
        parser.add_argument(
            "--backoff-base",
            type=float,
            default=None,
            help="The first wait before a reconnect (default 1); it doubles per failure.",
        )

    def handle(self, *args, poll_seconds, lock_ttl, backoff_max, backoff_base, **options):
        from apps.core.celery_signals import on_worker_init

        try:
            options = options_from_env(
                poll_seconds=poll_seconds, lock_ttl=lock_ttl, backoff_max=backoff_max, backoff_base=backoff_base
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        on_worker_init()  # serves /metrics on PARLEY_WORKER_METRICS_PORT when set (own pod or host)
        supervisor = Supervisor(options)
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
