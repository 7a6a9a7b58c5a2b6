"""Gunicorn config for the cross-process test: Parley's deploy config plus the test-only platform."""

import runpy
from pathlib import Path

globals().update(
    {
        k: v
        for k, v in runpy.run_path(
            str(Path(__file__).resolve().parents[2] / "deploy/prometheus/gunicorn.conf.py")
        ).items()
        if not k.startswith("__")
    }
)


def post_worker_init(worker):
    from apps.channels.platforms import registry
    from tests.observability.testim import ADAPTER_PATH, PLATFORM

    registry.PLATFORMS[PLATFORM] = registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH)
