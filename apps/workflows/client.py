"""One workflow call over HTTP: sign, POST, retry with backoff, keep a bounded answer.

Retried (up to ``max_retries`` more attempts, waiting ``backoff * 2**n`` seconds, at most
``MAX_WAIT_S``, or what a 429/503 ``Retry-After`` asks within that): network errors, timeouts,
429 and 5xx. Any other answer outside 2xx (4xx, and 3xx: redirects are not followed) fails at
once. Errors name what went wrong, never the URL (it may carry a token) or the secret.

Every connection goes to an address checked against ``blocked_networks()``: the host is resolved
once, when the connection is opened (``_CheckedBackend``), and the socket goes to the address that
passed — the HTTP client never resolves the name again, so a DNS answer that changes between the
check and the connection (DNS rebinding) cannot reach a blocked address.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from .conf import setting, text_setting
from .signing import signature

#: Bytes of a response read at most (the rest is not waited for).
MAX_READ = 256 * 1024
#: Characters of a response kept on the run.
KEEP_CHARS = 16_000
MAX_WAIT_S = 30.0
USER_AGENT = "Parley-Workflows/1"

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    """One pooled client per process (connections to the same business system are reused)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = httpx.Client(
                    follow_redirects=False, transport=_CheckedTransport(limits=httpx.Limits(max_connections=100))
                )
    return _client


class BlockedAddress(Exception):
    """The host is, or resolves to, an address in a blocked network: nothing was connected to."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (IP literals pass through), each once, in the resolver's
    order. Raises ``OSError``/``UnicodeError`` when it does not resolve."""
    addresses: list[str] = []
    for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _CheckedBackend(httpcore.SyncBackend):
    """Opens a connection only to an address that passed ``blocked_networks()``: the host is
    resolved once, here; if any of its addresses is blocked nothing is connected to (a host that
    answers with a mix is refused); otherwise the socket goes to the checked addresses in order.
    TLS still verifies the certificate for, and sends SNI with, the URL's host name, and the
    ``Host`` header is the URL's: only the name lookup is done by Parley."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"the host name did not resolve ({type(exc).__name__})") from exc
        networks = blocked_networks()
        for address in addresses:
            reason = _blocked(address, networks)
            if reason:
                raise BlockedAddress(reason)
        error: Exception = httpcore.ConnectError("the host name resolved to no address")
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


class _CheckedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool that connects through ``_CheckedBackend``. Never
    uses ``HTTP(S)_PROXY`` (a client given a transport reads no proxy settings): through a proxy
    the address checked would not be the one reached."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(trust_env=False)
        # httpx has no argument for the pool's network backend; the pool is built the way httpx
        # builds it (same TLS context and limits), with the checked backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # SSL_CERT_FILE / SSL_CERT_DIR still apply
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(),
        )


#: Never called, whatever a tenant admin types: link-local addresses (cloud metadata services).
DEFAULT_BLOCKED = "169.254.0.0/16,fe80::/10"


def blocked_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``PARLEY_WORKFLOW_BLOCKED_NETWORKS``: comma-separated networks workflow calls may not reach
    (default: link-local). Multi-tenant installs add their own, e.g. ``127.0.0.0/8,10.0.0.0/8``."""
    raw = text_setting("PARLEY_WORKFLOW_BLOCKED_NETWORKS", DEFAULT_BLOCKED)
    return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]


def _blocked(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return f"the address {address} is not an IP address"
    if any(ip in network for network in networks):
        return f"the address {ip} is in a blocked network (PARLEY_WORKFLOW_BLOCKED_NETWORKS)"
    return ""


def blocked_reason(url: str) -> str:
    """Why ``url`` may never be called ("" when it may, as far as can be told without resolving
    its host): its host is an IP address in ``blocked_networks()``. A host name is checked when
    the call connects (``_CheckedBackend``), against the address it then resolves to."""
    networks = blocked_networks()
    if not networks:
        return ""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError):
        return "invalid URL"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ""
    return _blocked(host, networks)


def retry_backoff() -> float:
    """Seconds before the first retry (``PARLEY_WORKFLOW_RETRY_BACKOFF``, default 1); doubles each time."""
    return max(0.0, setting("PARLEY_WORKFLOW_RETRY_BACKOFF", 1.0))


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
