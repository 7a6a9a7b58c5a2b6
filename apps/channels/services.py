"""Channel lookups used by the webhook view, the consumers and the pipeline."""

from __future__ import annotations

from .models import Channel


def channel_for_webhook(*, platform: str, key: str) -> Channel | None:
    """The enabled channel with this key and platform whose bot and tenant are enabled, or None."""
    return (
        Channel.objects.select_related("bot", "bot__tenant")
        .filter(key=key, platform=platform, enabled=True, bot__enabled=True, bot__tenant__is_active=True)
        .first()
    )
