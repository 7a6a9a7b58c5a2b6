"""``python manage.py run``: prepare the database and serve Parley (HTTP + WebSocket) with uvicorn.

On the embedded default this is the whole of Parley in one process: background tasks run on an
in-process thread pool, and channels in long-connection mode are connected from this process too
(``--no-connectors`` leaves them to a separate ``run_connectors``). In production run gunicorn
with uvicorn workers plus Celery instead (see the README); this command still works there for a
quick single-node start.
"""

from __future__ import annotations

import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.channels.connectors.supervisor import BackgroundSupervisor, options_from_env
from apps.core.scheduler import start_inprocess_beat
from apps.setup.services import setup_needed, setup_token


def serving_url(host: str, port: int) -> str:
    """The address a browser on this machine opens for ``host``:``port`` (a server on every
    interface is reached on 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def banner(url: str) -> str:
    shape = "embedded (SQLite, in-process tasks)" if settings.EMBEDDED else "production (PostgreSQL + Redis)"
    lines = ["", f"  Parley is running — {shape}", f"  Open {url}"]
    if setup_needed():
        lines += [
            f"  First run: finish setup at {url}setup/ with this one-time setup token:",
            "",
            f"      {setup_token()}",
            "",
            "  (print it again with: python manage.py setup_token)",
        ]
    else:
        lines.append(f"  Admin console: {url}admin/")
    return "\n".join(lines) + "\n\n"


class Command(BaseCommand):
    help = "Migrate, then serve Parley on HOST:PORT with uvicorn (ASGI: HTTP and WebSocket)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-migrate", action="store_true", help="Skip applying database migrations.")
        parser.add_argument(
            "--no-connectors",
            action="store_true",
            help="Do not hold long-connection channels here (run `manage.py run_connectors` instead).",
        )

    def _banner_when_started(self, server, text: str) -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            sys.stdout.write(text)
            sys.stdout.flush()

    def handle(self, *args, host: str, port: int, no_migrate: bool, no_connectors: bool, **options):
        import uvicorn

        try:
            connector_options = None if no_connectors else options_from_env()
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        url = serving_url(host, port)
        if not settings.PUBLIC_BASE_URL_SET:
            # Links Parley shows or sends (web chat, webhook URLs, rating links) name this address.
            settings.PUBLIC_BASE_URL = url.rstrip("/")
        if settings.TASKS_MODE == "inprocess":
            start_inprocess_beat()  # the sweeper and retention cleanup, without a celery beat
        connectors = BackgroundSupervisor(connector_options).start() if connector_options else None
        # Imported here, on this thread, not inside uvicorn's event loop: importing it warms the
        # process up (apps/runtime/warmup.py), which opens the database and may not run in a loop.
        from config.asgi import application

        server = uvicorn.Server(
            uvicorn.Config(
                application,
                host=host,
                port=port,
                log_config=None,
                lifespan="off",
                ws_max_size=64 * 1024,
                proxy_headers=True,
            )
        )
        # The banner (with the setup token) comes once the server listens: after uvicorn's own
        # start-up lines, so it is the last thing on the screen until someone opens a page.
        threading.Thread(target=self._banner_when_started, args=(server, banner(url)), daemon=True).start()
        try:
            server.run()
        except KeyboardInterrupt:  # Ctrl+C (SIGINT): the server has shut down; stop as uvicorn.run does
            pass
        finally:
            if connectors is not None and not connectors.stop():
                self.stderr.write("long connections did not close in time; their locks expire on their own")
        if not server.started:  # e.g. the port is taken: uvicorn said why
            raise SystemExit(3)
