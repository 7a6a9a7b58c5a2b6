"""A process started with PROMETHEUS_MULTIPROC_DIR pointing at a directory nobody created yet (a
fresh worker container) still starts and counts, and its figures reach the shared exposition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
from apps.core import metrics
metrics.REPLIES.labels("telegram", "sent").inc(3)
"""

READER = """
from apps.core import metrics
print(metrics.exposition(include_queue=False).decode())
"""


def _run(code: str, env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_missing_directory_is_created_and_processes_are_summed(tmp_path):
    target = tmp_path / "not-yet" / "metrics"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(target), "PYTHONPATH": str(ROOT)}
    _run(WRITER, env)
    _run(WRITER, env)  # a second process, e.g. another worker
    assert target.is_dir()
    text = _run(READER, env)
    assert 'parley_replies_total{outcome="sent",platform="telegram"} 6.0' in text
