"""The alert rules are valid Prometheus rules and fire as tested (promtool); HighLatency is verbatim."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
GUIDE_EXPRESSION = "histogram_quantile(0.99, rate(ai_response_duration_seconds_bucket[5m])) > 2"

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None,
    reason="promtool is not installed (Debian package 'prometheus'; .ci/run installs it in CI)",
)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def test_high_latency_rule_is_the_guides_rule_verbatim():
    rules = {
        r["alert"]: r for g in yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]
    }
    assert rules["HighLatency"]["expr"] == GUIDE_EXPRESSION
    assert rules["HighLatency"]["labels"] == {"severity": "critical"}
    for name in (
        "ModelSuccessRateLow",
        "FallbackRateHigh",
        "WebhookAckSlow",
        "MessagesWaitingTooLong",
        "HighCpu",
        "PlatformSendFailing",
        "UndeliveredRepliesGrowing",
        "ReplyUndeliveredLong",
        "RepliesGivenUp",
    ):
        assert {"summary", "description"} <= set(rules[name]["annotations"]), name
    assert "process_cpu_seconds_total" in rules["HighCpu"]["expr"]
    assert "0.995" in rules["ModelSuccessRateLow"]["expr"]


@needs_promtool
def test_promtool_accepts_the_rules_and_the_scrape_config():
    checked = _run("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = _run("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_rule_unit_tests_pass_including_high_latency_firing():
    result = _run("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    cases = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    fired = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert fired >= {
        "HighLatency",
        "ModelSuccessRateLow",
        "FallbackRateHigh",
        "WebhookAckSlow",
        "MessagesWaitingTooLong",
        "HighCpu",
        "PlatformSendFailing",
        "UndeliveredRepliesGrowing",
        "ReplyUndeliveredLong",
    }


@needs_promtool
def test_a_broken_rule_expectation_is_caught(tmp_path):
    """Guards the guard: promtool must fail when HighLatency is expected on a fast series."""
    shutil.copy(PROMETHEUS_DIR / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "bad_test.yml").write_text(
        "rule_files: [alerts.yml]\n"
        "tests:\n"
        "  - interval: 1m\n"
        "    input_series:\n"
        "      - series: 'ai_response_duration_seconds_bucket{le=\"0.5\"}'\n"
        "        values: '0+10x15'\n"
        "      - series: 'ai_response_duration_seconds_bucket{le=\"+Inf\"}'\n"
        "        values: '0+10x15'\n"
        "    alert_rule_test:\n"
        "      - eval_time: 10m\n"
        "        alertname: HighLatency\n"
        "        exp_alerts: [{exp_labels: {severity: critical}}]\n"
    )
    result = subprocess.run(
        [promtool, "test", "rules", "bad_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
