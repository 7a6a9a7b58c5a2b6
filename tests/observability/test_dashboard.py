"""The Grafana dashboard: valid JSON, templated by tenant/bot/platform, every query valid PromQL over
series Parley actually exports."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from apps.core import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "parley-dashboard.json"


def _exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def _exported_names() -> set[str]:
    names = set()
    for obj in vars(metrics).values():
        if hasattr(obj, "_name") and hasattr(obj, "_type"):
            base = obj._name
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    names |= {"parley_inbound_queue_depth", "parley_inbound_oldest_waiting_seconds", "process_cpu_seconds_total"}
    return names


def test_dashboard_is_generated_from_its_source():
    build = runpy.run_path(str(DASHBOARD.with_name("build_dashboard.py")))["build"]
    assert json.loads(DASHBOARD.read_text()) == json.loads(json.dumps(build())), "run build_dashboard.py"


def test_dashboard_filters_by_tenant_bot_and_platform_and_uses_known_series():
    board = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in board["templating"]["list"]} >= {"tenant", "bot", "platform"}
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for topic in ("inbound messages", "percentiles", "success", "fallback", "cache"):
        assert topic in titles
    known = _exported_names()
    for expr in _exprs():
        for name in re.findall(r"\b((?:parley|ai|process)_[a-z_]+)\b", expr):
            assert name in known, f"{name} in {expr!r} is not a series Parley exports"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (CI installs it)")
def test_every_dashboard_query_is_valid_promql(tmp_path):
    def concrete(expr: str) -> str:
        return (
            expr.replace("$__rate_interval", "5m")
            .replace("$tenant", ".*")
            .replace("$bot", ".*")
            .replace("$platform", ".*")
        )

    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": concrete(e)} for i, e in enumerate(_exprs())],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", "dashboard_rules.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
