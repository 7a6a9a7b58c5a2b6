"""Outbound HTTP to the platforms' APIs: one helper and one timeout for every adapter.

Every call waits at most ``PLATFORM_API_TIMEOUT`` seconds (the setting, default 10) for an answer,
and at most ``CONNECT_SECONDS`` of that to connect. Network failures become ``PlatformError``
(retryable) naming the platform, what was being done and the exception's type only: platform URLs
may carry an access token or a bot token, which must not reach logs or the admin. Slack's adapter
and connector call through ``slack_sdk`` (its ``WebClient``) with the same timeout; the long
connections' own asynchronous calls use ``timeout()`` too. Every connection goes through the outbound
guard (apps/core/netguard.py): a channel's ``api_base`` can be pointed anywhere by a tenant admin.
An address the guard refuses is a permanent ``PlatformError``.

The calls share one pooled client per process (``client()``): connections to a platform, and their
TLS sessions, are kept alive between calls, and the client itself — its TLS context — is built once:
that took 30–60 ms, which every call paid when each made its own (three calls before a DingTalk
card shows its first text).
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
from typing import Any

import httpx
from django.conf import settings

from apps.core import netguard

from .base import PlatformError

CONNECT_SECONDS = 3.0
#: Idle connections to the platforms kept open, and for how long (seconds).
KEEPALIVE_CONNECTIONS = 64
KEEPALIVE_SECONDS = 30.0

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """The process's client for platform API calls (thread-safe; built on first use). No limit on
    connections at once, so a slow platform never makes another call wait for the pool."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = netguard.guarded_client(
                    verify=netguard.tls_context(),
                    timeout=timeout(),
                    limits=httpx.Limits(
                        max_connections=None,
                        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
                        keepalive_expiry=KEEPALIVE_SECONDS,
                    ),
                )
    return _client


@functools.cache
def system_tls_context() -> ssl.SSLContext:
    """The system's trust store as urllib builds it for each connection when given none (slack_sdk's
    calls), built once per process instead."""
    return ssl.create_default_context()


def _forget_client() -> None:
    """A forked child (a Celery prefork worker) never uses its parent's sockets: it builds its own."""
    global _client
    _client = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_client)


def timeout_seconds() -> float:
    return settings.PLATFORM_API_TIMEOUT


def timeout(*, extra: float = 0.0) -> httpx.Timeout:
    """The timeout of a platform API call; ``extra`` seconds more for calls the platform holds on
    purpose (Telegram's long poll)."""
    seconds = timeout_seconds()
    return httpx.Timeout(seconds + extra, connect=min(CONNECT_SECONDS, seconds))


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: where a call goes, without the path or query (which may
    carry a token)."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}"


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object; {} when the body is not one."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def request(
    platform: str,
    method: str,
    url: str,
    *,
    what: str = "API call",
    json: Any = None,
    params: dict | None = None,
    headers: dict | None = None,
) -> tuple[int, dict[str, Any]]:
    """One call to a platform's JSON API: ``(HTTP status, JSON object or {})``. Raises
    ``PlatformError`` (not permanent) when no answer came: "<platform> <what>: timed out" or the
    exception's type."""
    try:
        response = client().request(method, url, json=json, params=params, headers=headers, timeout=timeout())
    except netguard.OutboundRefused as exc:  # the API base points where Parley may not call
        raise PlatformError(f"{platform} {what}: {exc}", permanent=True) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise PlatformError(f"{platform} {what}: {type(exc).__name__}", unreachable=origin(url)) from None
    except httpx.TimeoutException:
        raise PlatformError(f"{platform} {what}: timed out") from None
    except httpx.HTTPError as exc:
        raise PlatformError(f"{platform} {what}: {type(exc).__name__}") from None
    return response.status_code, json_object(response)
