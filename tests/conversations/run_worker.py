"""A Celery worker for the pipeline tests: Parley's Celery app plus the test-only platform.

    python -m tests.conversations.run_worker [extra celery worker options]

The environment says which database, broker and pipeline timings to use.
"""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from apps.channels.platforms import registry  # noqa: E402
from config.celery import app  # noqa: E402
from tests.conversations.fake_platform import ADAPTER_PATH, PLATFORM  # noqa: E402

registry.PLATFORMS[PLATFORM] = registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH)
registry.get_adapter.cache_clear()

if __name__ == "__main__":
    app.worker_main(
        [
            "worker",
            "-P",
            "threads",
            "-c",
            os.environ.get("WORKER_CONCURRENCY", "8"),
            "-Q",
            "llm,default,webhooks",
            "-l",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"pipeline-test-{os.getpid()}@%h",
            *sys.argv[1:],
        ]
    )
