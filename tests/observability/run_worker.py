"""A Celery worker for the cross-process test: Parley's Celery app plus the test-only platform.

python -m tests.observability.run_worker   (the environment says which database and broker)
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from apps.channels.platforms import registry  # noqa: E402
from config.celery import app  # noqa: E402
from tests.observability.testim import ADAPTER_PATH, PLATFORM  # noqa: E402

registry.PLATFORMS[PLATFORM] = registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH)

if __name__ == "__main__":
    app.worker_main(
        [
            "worker",
            "-P",
            "threads",
            "-c",
            "4",
            "-Q",
            "llm,default,webhooks",
            "-l",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"obs-test-{os.getpid()}@%h",
        ]
    )
