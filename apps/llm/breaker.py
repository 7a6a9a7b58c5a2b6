"""Circuit breaker per model config, shared by every web and worker process through the cache.

With REDIS_URL set the default cache is Redis, so all replicas see one state; embedded, it is the
process's local memory (one process anyway).

States: **closed** (calls go through), **open** (after ``LLM_BREAKER_FAILURES`` failures in a row
the model is skipped for ``LLM_BREAKER_COOLDOWN`` seconds), **half-open** (the cool-down is over:
exactly one caller — whoever takes the probe slot first — tries the model; success closes the
breaker, failure opens it for another cool-down).

The state is keyed by the config's id *and* its ``updated_at``, so editing a model in the admin
(a fixed key, a new endpoint) starts it with a fresh, closed breaker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


def failure_threshold() -> int:
    return settings.LLM_BREAKER_FAILURES


def cooldown_seconds() -> float:
    return settings.LLM_BREAKER_COOLDOWN


def breaker_key(spec: Any) -> str:
    """The cache key prefix of one model's breaker ('' for models without a row: never broken)."""
    cfg = getattr(spec, "config", None)
    if cfg is None or cfg.pk is None:
        return ""
    version = int(cfg.updated_at.timestamp() * 1000) if cfg.updated_at else 0
    return f"llm:brk:{cfg.pk}:{version}"


@dataclass
class BreakerState:
    state: str  # closed | open | half-open
    failures: int = 0
    retry_in_s: float = 0.0  # open: seconds until the next probe is allowed


def state_of(spec_or_config: Any) -> BreakerState:
    """The breaker's state for a ModelSpec or a ModelConfig (for the admin column)."""
    key = breaker_key(_as_spec(spec_or_config))
    if not key:
        return BreakerState(CLOSED)
    failures = int(cache.get(key + ":fails") or 0)
    open_until = cache.get(key + ":open")
    if open_until is None:
        return BreakerState(CLOSED, failures)
    remaining = float(open_until) - time.time()
    if remaining > 0:
        return BreakerState(OPEN, failures, round(remaining, 1))
    return BreakerState(HALF_OPEN, failures)


def allow(spec: Any) -> bool:
    """May this call go to the model? False while the breaker is open (or another caller probes).

    Reads the failure count with the open mark (one round trip); when neither is set, the spec
    remembers it (``breaker_clean``) and a success then has nothing to reset."""
    key = breaker_key(spec)
    if not key:
        return True
    found = cache.get_many([key + ":open", key + ":fails"])
    if hasattr(spec, "breaker_clean"):
        spec.breaker_clean = not found
    open_until = found.get(key + ":open")
    if open_until is None:
        return True
    if time.time() < float(open_until):
        return False
    # Half-open: one probe at a time across all processes (cache.add is atomic: SET NX on Redis).
    return cache.add(key + ":probe", 1, timeout=max(int(spec.timeout_s) + 5, 10))


def record_success(spec: Any) -> None:
    key = breaker_key(spec)
    if key and not getattr(spec, "breaker_clean", False):
        cache.delete_many([key + ":fails", key + ":open", key + ":probe"])


def record_failure(spec: Any) -> None:
    key = breaker_key(spec)
    if not key:
        return
    cooldown = cooldown_seconds()
    keep = int(cooldown * 20) + 60  # long enough to remember "open" past the cool-down (half-open)
    if cache.get(key + ":open") is not None:
        # A failed probe: open for another cool-down.
        cache.set(key + ":open", time.time() + cooldown, timeout=keep)
        cache.delete(key + ":probe")
        return
    cache.add(key + ":fails", 0, timeout=keep)
    try:
        failures = cache.incr(key + ":fails")
    except ValueError:  # expired between add and incr
        cache.set(key + ":fails", 1, timeout=keep)
        failures = 1
    if failures >= failure_threshold():
        cache.set(key + ":open", time.time() + cooldown, timeout=keep)


def release_probe(spec: Any) -> None:
    key = breaker_key(spec)
    if key:
        cache.delete(key + ":probe")


def reset(spec_or_config: Any) -> None:
    record_success(_as_spec(spec_or_config))


def _as_spec(obj: Any) -> Any:
    if hasattr(obj, "config"):
        return obj
    return type("_Spec", (), {"config": obj, "timeout_s": float(getattr(obj, "timeout_s", 3))})()
