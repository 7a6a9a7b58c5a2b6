"""``python manage.py run_connectors``: long connections for channels in long-connection mode.

Runs until SIGTERM or SIGINT, then closes every connection and releases its channel locks so another
``run_connectors`` process takes the channels over at once. See docs/connectors.md.
"""

from __future__ import annotations

import asyncio
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from apps.channels.connectors.supervisor import Options, Supervisor
from apps.core import metrics


def _seconds(given: float | None, env_name: str, default: float) -> float:
    """The option as given on the command line, else its environment variable, else the default."""
    if given is not None:
        return given
    raw = os.environ.get(env_name, "")
    if not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise CommandError(f"{env_name} must be a number of seconds, not {raw[:40]!r}") from None


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

        defaults = Options()
        poll_seconds = _seconds(poll_seconds, "PARLEY_CONNECTORS_POLL_SECONDS", defaults.poll_seconds)
        lock_ttl = _seconds(lock_ttl, "PARLEY_CONNECTORS_LOCK_TTL", defaults.lock_ttl)
        backoff_max = _seconds(backoff_max, "PARLEY_CONNECTORS_BACKOFF_MAX", defaults.backoff_max)
        backoff_base = _seconds(backoff_base, "PARLEY_CONNECTORS_BACKOFF_BASE", defaults.backoff_base)
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
