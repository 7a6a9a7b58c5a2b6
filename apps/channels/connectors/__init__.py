"""Long-connection mode: Parley connects out to the platform instead of receiving webhooks.

For companies without a public URL. ``python manage.py run_connectors`` (``supervisor.py``) keeps one
connection per enabled long-connection channel, one holder per channel across the cluster. Each
platform's client is the ``connector.py`` of its folder (``apps/channels/platforms/<name>/``), named
by its line in the platform registry. See docs/connectors.md.
"""

from __future__ import annotations

from apps.channels.platforms.registry import (
    connector_class,
    get_adapter,
    long_connection_platforms,
    no_connector_reason,
)

from .base import Connector

__all__ = ["Connector", "connector_class", "long_connection_platforms", "long_connection_problems"]


def long_connection_problems(platform: str, credentials: dict, *, enabled: bool = True) -> dict[str, list[str]]:
    """What stops a ``platform`` channel with these credentials from running in long-connection
    mode, as messages by form field (``mode``, ``credentials``); {} when nothing does."""
    cls = connector_class(platform)
    if cls is None:
        reason = no_connector_reason(platform)
        offered = ", ".join(long_connection_platforms())
        return {"mode": [f"{reason} Long connection is available for: {offered}."]}
    adapter = get_adapter(platform)
    known = set(adapter.credential_keys if adapter else ()) | set(cls.extra_credentials)
    errors: list[str] = []
    unknown = sorted(set(credentials) - known)
    if unknown:
        errors.append(
            f"Unknown credential key(s) for {platform}: {', '.join(unknown)}. Expected: {', '.join(sorted(known))}."
        )
    if enabled:
        missing = [k for k in cls.required_credentials if not credentials.get(k)]
        if missing:
            errors.append(f"Missing credential(s) for {platform} in long-connection mode: {', '.join(missing)}.")
    return {"credentials": errors} if errors else {}
