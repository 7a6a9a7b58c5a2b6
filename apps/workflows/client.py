"""One workflow call over HTTP: sign, POST, retry with backoff, keep a bounded answer.

Retried (up to ``max_retries`` more attempts, waiting ``backoff * 2**n`` seconds, at most
``MAX_WAIT_S``, or what a 429/503 ``Retry-After`` asks within that): network errors, timeouts,
429 and 5xx. Any other answer outside 2xx (4xx, and 3xx: redirects are not followed) fails at
once. Errors name what went wrong, never the URL (it may carry a token) or the secret.

Every connection goes through the outbound guard (apps/core/netguard.py): the host is resolved once,
when the connection is opened, and the socket goes to the address that passed — the HTTP client
never resolves the name again, so a DNS answer that changes between the check and the connection
(DNS rebinding) cannot reach a blocked address.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from apps.core import netguard

from .signing import signature

#: Bytes of a response read at most (the rest is not waited for).
MAX_READ = 256 * 1024
#: Characters of a response kept on the run.
KEEP_CHARS = 16_000
MAX_WAIT_S = 30.0
USER_AGENT = "Parley-Workflows/1"

_client: httpx.Client | None = None
_client_lock = threading.Lock()

#: A workflow's URL (or the address its host resolves to) that the outbound guard refuses.
BlockedAddress = netguard.OutboundRefused


def _http() -> httpx.Client:
    """One pooled client per process (connections to the same business system are reused), whose
    every connection goes through the outbound guard (apps/core/netguard.py)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = netguard.guarded_client(follow_redirects=False, limits=httpx.Limits(max_connections=100))
    return _client


def blocked_reason(url: str) -> str:
    """Why ``url`` may never be called ("" when it may, as far as can be told without resolving
    its host). A host name is checked when the call connects, against the address it resolves to."""
    return netguard.check_url(url)


def retry_backoff() -> float:
    """Seconds before the first retry (``PARLEY_WORKFLOW_RETRY_BACKOFF``, default 1); doubles each time."""
    return max(0.0, float(settings.PARLEY_WORKFLOW_RETRY_BACKOFF))


def call_budget_s(*, timeout_s: int, max_retries: int) -> float:
    """The longest a call with these settings can take, every attempt and wait included."""
    waits = sum(min(MAX_WAIT_S, retry_backoff() * 2**n) for n in range(max_retries))
    return (max_retries + 1) * (timeout_s + 1) + waits


@dataclass
class CallResult:
    outcome: str  # ok | failed | timeout
    attempts: int
    status: int | None = None
    body: str = ""  # the response as text, at most KEEP_CHARS
    data: Any = None  # the response's JSON, or None
    error: str = ""
    elapsed_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _retry_after(resp_headers: httpx.Headers) -> float | None:
    value = resp_headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def post_json(
    *,
    url: str,
    body: bytes,
    run_ref: str,
    secret: str = "",
    timeout_s: float = 10,
    max_retries: int = 0,
    on_attempt: Callable[[int], None] | None = None,
) -> CallResult:
    """POST ``body`` (JSON bytes) to ``url`` until it succeeds, fails for good or the retries are
    spent. ``run_ref`` goes out as ``X-Parley-Run-Id`` on every attempt (the business system's
    idempotency key). ``on_attempt(n)`` is called before attempt ``n``. Never raises for HTTP."""
    started = time.monotonic()
    blocked = blocked_reason(url)
    if blocked:
        return CallResult("failed", 0, error=blocked)
    attempt = 0
    result = CallResult(outcome="failed", attempts=0)
    while True:
        attempt += 1
        if on_attempt is not None:
            on_attempt(attempt)
        result, retryable, wait_hint = _attempt(url, body, run_ref, secret, timeout_s, attempt)
        result.attempts = attempt
        if result.ok or not retryable or attempt > max_retries:
            break
        wait = min(MAX_WAIT_S, retry_backoff() * 2 ** (attempt - 1))
        if wait_hint is not None:
            wait = min(MAX_WAIT_S, max(wait, wait_hint))
        time.sleep(wait)
    result.elapsed_ms = int((time.monotonic() - started) * 1000)
    return result


def _attempt(
    url: str, body: bytes, run_ref: str, secret: str, timeout_s: float, attempt: int
) -> tuple[CallResult, bool, float | None]:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Parley-Run-Id": run_ref,
        "X-Parley-Attempt": str(attempt),
        "X-Parley-Timestamp": timestamp,
    }
    if secret:
        headers["X-Parley-Signature"] = signature(secret, timestamp, body)
    try:
        with _http().stream("POST", url, content=body, headers=headers, timeout=httpx.Timeout(timeout_s)) as resp:
            raw = bytearray()
            for chunk in resp.iter_bytes():
                raw.extend(chunk)
                if len(raw) >= MAX_READ:
                    break
            status = resp.status_code
            retry_after = _retry_after(resp.headers)
    except BlockedAddress as exc:
        return CallResult("failed", attempt, error=str(exc)), False, None
    except httpx.TimeoutException:
        return CallResult("timeout", attempt, error=f"no answer within {timeout_s:g} s"), True, None
    except httpx.InvalidURL:
        return CallResult("failed", attempt, error="invalid URL"), False, None
    except httpx.UnsupportedProtocol:
        return CallResult("failed", attempt, error="unsupported URL scheme"), False, None
    except httpx.HTTPError as exc:
        return CallResult("failed", attempt, error=f"network error ({type(exc).__name__})"), True, None
    text = bytes(raw[:MAX_READ]).decode("utf-8", errors="replace")
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    result = CallResult("ok", attempt, status=status, body=text[:KEEP_CHARS], data=data)
    if 200 <= status < 300:
        return result, False, None
    result.outcome = "failed"
    result.error = f"HTTP {status}"
    retryable = status == 429 or status >= 500
    return result, retryable, retry_after if retryable else None
