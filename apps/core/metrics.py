"""Parley's own Prometheus metrics. Label values stay bounded: no user ids or message text.

Names are part of the operator contract (alert rules and dashboards in ``deploy/`` use them).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESPONSE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

AI_RESPONSE_DURATION = Histogram(
    "ai_response_duration_seconds",
    "Time from an inbound message being accepted to its answer being sent.",
    ["tenant", "bot", "platform"],
    buckets=RESPONSE_BUCKETS,
)
MODEL_CALLS = Counter(
    "parley_model_calls_total",
    "Model calls by model config, provider and outcome (ok, timeout, error, rate_limited, breaker_open).",
    ["tenant", "model", "provider", "outcome"],
)
MODEL_CALL_DURATION = Histogram(
    "parley_model_call_duration_seconds",
    "Latency of model calls (to the first token when streaming).",
    ["tenant", "model", "provider"],
    buckets=RESPONSE_BUCKETS,
)
MODEL_TOKENS = Counter(
    "parley_model_tokens_total",
    "Tokens sent to and received from models.",
    ["tenant", "model", "provider", "direction"],
)
FALLBACKS = Counter("parley_fallbacks_total", "Answers that needed a fallback model.", ["tenant", "bot"])
CACHE_LOOKUPS = Counter(
    "parley_answer_cache_total",
    "Answer cache and knowledge-entry lookups by result (hit, miss).",
    ["tenant", "bot", "kind", "result"],
)
INBOUND_MESSAGES = Counter(
    "parley_inbound_messages_total",
    "Inbound messages by platform and outcome (accepted, duplicate, rejected_signature, rejected, rate_limited).",
    ["platform", "outcome"],
)
WEBHOOK_ACK = Histogram(
    "parley_webhook_ack_seconds", "Time to acknowledge a platform webhook.", ["platform"], buckets=FAST_BUCKETS
)
REPLIES = Counter(
    "parley_replies_total", "Replies sent to platforms by outcome (sent, failed).", ["platform", "outcome"]
)
WEBCHAT_SOCKETS = Gauge(
    "parley_webchat_sockets_open", "Open web-chat WebSocket connections.", multiprocess_mode="livesum"
)
WORKFLOW_CALLS = Counter("parley_workflow_calls_total", "Workflow webhook calls by outcome.", ["outcome"])
RATE_LIMITED = Counter("parley_rate_limited_total", "Messages refused by a rate limit.", ["scope"])
