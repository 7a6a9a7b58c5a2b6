"""Writes parley-dashboard.json (Grafana 10+ dashboard, Prometheus data source).

Kept as code so panels stay consistent (same filters, units and thresholds everywhere):
    python deploy/grafana/build_dashboard.py
"""

from __future__ import annotations

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}
ANSWERS = 'tenant=~"$tenant", bot=~"$bot", platform=~"$platform"'
MODELS = 'tenant=~"$tenant"'
PLATFORM = 'platform=~"$platform"'
RI = "$__rate_interval"

_next_id = 0


def _id() -> int:
    global _next_id
    _next_id += 1
    return _next_id


def target(expr: str, legend: str = "", ref: str = "A") -> dict:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def stat(title: str, expr: str, *, unit: str, x: int, thresholds: list[tuple[str, float | None]], desc: str) -> dict:
    return {
        "id": _id(),
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": 4, "w": 4, "x": x, "y": 0},
        "targets": [target(expr)],
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "value",
        },
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "decimals": 2,
                "thresholds": {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in thresholds]},
            },
            "overrides": [],
        },
    }


def series(
    title: str,
    targets: list[dict],
    *,
    unit: str,
    x: int,
    y: int,
    w: int = 12,
    desc: str = "",
    max_: float | None = None,
    threshold: float | None = None,
) -> dict:
    defaults: dict = {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}}
    if max_ is not None:
        defaults["max"] = max_
    if threshold is not None:
        defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": threshold}],
        }
    return {
        "id": _id(),
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "targets": targets,
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "fieldConfig": {"defaults": defaults, "overrides": []},
    }


def row(title: str, y: int) -> dict:
    return {
        "id": _id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
        "panels": [],
    }


def variable(name: str, label: str, query: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def ratio(num: str, den: str) -> str:
    return f"({num}) / ({den})"


def build() -> dict:
    p99 = f"histogram_quantile(0.99, sum by (le) (rate(ai_response_duration_seconds_bucket{{{ANSWERS}}}[{RI}])))"
    model_ok = f'sum(rate(parley_model_calls_total{{{MODELS}, outcome="ok"}}[{RI}]))'
    model_all = f"sum(rate(parley_model_calls_total{{{MODELS}}}[{RI}]))"
    fallbacks = f'sum(rate(parley_fallbacks_total{{tenant=~"$tenant", bot=~"$bot"}}[{RI}]))'
    answers = f"sum(rate(ai_response_duration_seconds_count{{{ANSWERS}}}[{RI}]))"
    hits = f'sum(rate(parley_answer_cache_total{{tenant=~"$tenant", bot=~"$bot", result="hit"}}[{RI}]))'
    lookups = f'sum(rate(parley_answer_cache_total{{tenant=~"$tenant", bot=~"$bot"}}[{RI}]))'

    panels = [
        stat(
            "Answers / min",
            f"{answers} * 60",
            unit="short",
            x=0,
            thresholds=[("blue", None)],
            desc="Answers sent per minute (accepted → answered).",
        ),
        stat(
            "P99 response time",
            p99,
            unit="s",
            x=4,
            thresholds=[("green", None), ("orange", 1.5), ("red", 2)],
            desc="Target: under 2 s (alert HighLatency).",
        ),
        stat(
            "Model call success",
            ratio(model_ok, model_all),
            unit="percentunit",
            x=8,
            thresholds=[("red", None), ("orange", 0.99), ("green", 0.995)],
            desc="Calls with outcome ok among all model calls. Target: over 99.5 %.",
        ),
        stat(
            "Fallback rate",
            ratio(fallbacks, answers),
            unit="percentunit",
            x=12,
            thresholds=[("green", None), ("orange", 0.02), ("red", 0.05)],
            desc="Answers that needed a fallback model.",
        ),
        stat(
            "Cache / knowledge hit rate",
            ratio(hits, lookups),
            unit="percentunit",
            x=16,
            thresholds=[("blue", None)],
            desc="Answers served without a model call.",
        ),
        stat(
            "Oldest waiting message",
            f"max(parley_inbound_oldest_waiting_seconds{{{PLATFORM}}})",
            unit="s",
            x=20,
            thresholds=[("green", None), ("orange", 30), ("red", 60)],
            desc="Age of the oldest accepted message no worker has picked up.",
        ),
        row("Volume and latency", 4),
        series(
            "Inbound messages by platform and outcome",
            [
                target(
                    f"sum by (platform, outcome) (rate(parley_inbound_messages_total{{{PLATFORM}}}[{RI}])) * 60",
                    "{{platform}} {{outcome}}",
                )
            ],
            unit="short",
            x=0,
            y=5,
            desc="Per minute.",
        ),
        series(
            "Response time percentiles",
            [
                target(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(ai_response_duration_seconds_bucket{{{ANSWERS}}}[{RI}])))",
                    f"P{int(q * 100)}",
                    ref,
                )
                for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
            ],
            unit="s",
            x=12,
            y=5,
            threshold=2,
            desc="From message accepted to answer sent.",
        ),
        series(
            "P99 response time by platform and tenant",
            [
                target(
                    f"histogram_quantile(0.99, sum by (le, platform, tenant) "
                    f"(rate(ai_response_duration_seconds_bucket{{{ANSWERS}}}[{RI}])))",
                    "{{platform}} / {{tenant}}",
                )
            ],
            unit="s",
            x=0,
            y=13,
            threshold=2,
        ),
        series(
            "Answers by platform and tenant",
            [
                target(
                    f"sum by (platform, tenant) (rate(ai_response_duration_seconds_count{{{ANSWERS}}}[{RI}])) * 60",
                    "{{platform}} / {{tenant}}",
                )
            ],
            unit="short",
            x=12,
            y=13,
            desc="Per minute.",
        ),
        row("Models", 21),
        series(
            "Model call success rate by model",
            [
                target(
                    f"sum by (tenant, model, provider) "
                    f'(rate(parley_model_calls_total{{{MODELS}, outcome="ok"}}[{RI}])) / '
                    f"sum by (tenant, model, provider) (rate(parley_model_calls_total{{{MODELS}}}[{RI}]))",
                    "{{tenant}} {{model}} ({{provider}})",
                )
            ],
            unit="percentunit",
            x=0,
            y=22,
            max_=1,
            threshold=0.995,
        ),
        series(
            "Model calls by outcome",
            [
                target(
                    f"sum by (model, outcome) (rate(parley_model_calls_total{{{MODELS}}}[{RI}])) * 60",
                    "{{model}} {{outcome}}",
                )
            ],
            unit="short",
            x=12,
            y=22,
            desc="Per minute: ok, timeout, error, rate_limited, breaker_open.",
        ),
        series(
            "Model latency P95 by model",
            [
                target(
                    f"histogram_quantile(0.95, sum by (le, model, provider) "
                    f"(rate(parley_model_call_duration_seconds_bucket{{{MODELS}}}[{RI}])))",
                    "{{model}} ({{provider}})",
                )
            ],
            unit="s",
            x=0,
            y=30,
        ),
        series(
            "Tokens by model",
            [
                target(
                    f"sum by (model, direction) (rate(parley_model_tokens_total{{{MODELS}}}[{RI}])) * 60",
                    "{{model}} {{direction}}",
                )
            ],
            unit="short",
            x=12,
            y=30,
            desc="Per minute.",
        ),
        series(
            "Fallback rate by bot",
            [
                target(
                    f'sum by (tenant, bot) (rate(parley_fallbacks_total{{tenant=~"$tenant", bot=~"$bot"}}[{RI}])) / '
                    f"sum by (tenant, bot) (rate(ai_response_duration_seconds_count{{{ANSWERS}}}[{RI}]))",
                    "{{tenant}} / {{bot}}",
                )
            ],
            unit="percentunit",
            x=0,
            y=38,
            threshold=0.05,
        ),
        series(
            "Cache and knowledge hit rate",
            [
                target(
                    f"sum by (kind) "
                    f'(rate(parley_answer_cache_total{{tenant=~"$tenant", bot=~"$bot", result="hit"}}[{RI}])) / '
                    f'sum by (kind) (rate(parley_answer_cache_total{{tenant=~"$tenant", bot=~"$bot"}}[{RI}]))',
                    "{{kind}}",
                )
            ],
            unit="percentunit",
            x=12,
            y=38,
            max_=1,
        ),
        row("Platforms and workers", 46),
        series(
            "Webhook acknowledgement P99 by platform",
            [
                target(
                    f"histogram_quantile(0.99, sum by (le, platform) "
                    f"(rate(parley_webhook_ack_seconds_bucket{{{PLATFORM}}}[{RI}])))",
                    "{{platform}}",
                )
            ],
            unit="s",
            x=0,
            y=47,
            threshold=1,
            desc="Platforms retry deliveries not acknowledged within 3–5 s.",
        ),
        series(
            "Replies by platform and outcome",
            [
                target(
                    f"sum by (platform, outcome) (rate(parley_replies_total{{{PLATFORM}}}[{RI}])) * 60",
                    "{{platform}} {{outcome}}",
                )
            ],
            unit="short",
            x=12,
            y=47,
            desc="Per minute.",
        ),
        series(
            "Waiting messages",
            [
                target(f"max by (platform) (parley_inbound_queue_depth{{{PLATFORM}}})", "{{platform}} waiting", "A"),
            ],
            unit="short",
            x=0,
            y=55,
            w=8,
        ),
        series(
            "Oldest waiting message",
            [
                target(f"max by (platform) (parley_inbound_oldest_waiting_seconds{{{PLATFORM}}})", "{{platform}}"),
            ],
            unit="s",
            x=8,
            y=55,
            w=8,
            threshold=60,
        ),
        series(
            "Web-chat sockets and workflow calls",
            [
                target("sum(parley_webchat_sockets_open)", "open web-chat sockets", "A"),
                target(
                    f"sum by (outcome) (rate(parley_workflow_calls_total[{RI}])) * 60",
                    "workflow {{outcome}} / min",
                    "B",
                ),
            ],
            unit="short",
            x=16,
            y=55,
            w=8,
        ),
        series(
            "CPU by process (share of one core)",
            [target(f'rate(process_cpu_seconds_total{{job=~"parley-.*"}}[{RI}])', "{{job}} {{instance}} {{pid}}")],
            unit="percentunit",
            x=0,
            y=63,
            w=24,
            threshold=0.7,
            desc="Target: under 70 % (alert HighCpu).",
        ),
    ]
    return {
        "uid": "parley-overview",
        "title": "Parley — overview",
        "description": "Volume, latency percentiles, model success, fallback and cache rates per platform and tenant.",
        "tags": ["parley"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                variable("tenant", "Tenant", "label_values(ai_response_duration_seconds_count, tenant)"),
                variable("bot", "Bot", 'label_values(ai_response_duration_seconds_count{tenant=~"$tenant"}, bot)'),
                variable("platform", "Platform", "label_values(parley_inbound_messages_total, platform)"),
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("parley-dashboard.json")
    out.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
