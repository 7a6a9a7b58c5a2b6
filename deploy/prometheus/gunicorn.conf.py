"""Gunicorn settings for Parley's web process, with Prometheus multiprocess mode.

    PROMETHEUS_MULTIPROC_DIR=/run/parley/metrics \
        gunicorn -c deploy/prometheus/gunicorn.conf.py config.asgi:application

PROMETHEUS_MULTIPROC_DIR must be in the environment before gunicorn starts (every worker reads it
when it first imports prometheus_client) and must be a directory only this host's Parley processes
use; Celery workers on the same host may share it so their figures appear in the same scrape.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
timeout = 60
graceful_timeout = 30
accesslog = None  # Parley writes its own JSON lines


def on_starting(server):
    # Counters of a previous run must not be added to this one's.
    from apps.core.metrics import reset_multiprocess_dir

    reset_multiprocess_dir()


def child_exit(server, worker):
    # A dead worker's live gauges (open web-chat sockets) must stop counting; its counters stay.
    from apps.core.metrics import mark_process_dead

    mark_process_dead(worker.pid)
