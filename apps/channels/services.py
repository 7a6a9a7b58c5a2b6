"""Channel lookups used by the webhook view, the consumers and the pipeline."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.bots.models import Bot
from apps.tenants.models import Tenant

from .models import Channel

# Webhook channel lookups are kept in the process for a few seconds: a burst of messages to one
# channel (hundreds per second at peak) then costs one query, not one per message. Saving or
# deleting a channel, bot or tenant clears this process's copy at once; other processes see the
# change within ``PARLEY_CHANNEL_CACHE_SECONDS`` (default 5; 0 turns the cache off).
_webhook_channels: dict[tuple[str, str], tuple[float, Channel | None]] = {}
_webhook_lock = threading.Lock()


def _channel_cache_seconds() -> float:
    return float(getattr(settings, "PARLEY_CHANNEL_CACHE_SECONDS", 5))


def channel_for_webhook(*, platform: str, key: str) -> Channel | None:
    """The enabled channel with this key and platform whose bot and tenant are enabled, or None."""
    ttl = _channel_cache_seconds()
    now = time.monotonic()
    cached = _webhook_channels.get((platform, key))
    if ttl > 0 and cached is not None and cached[0] > now:
        return cached[1]
    channel = (
        Channel.objects.select_related("bot", "bot__tenant")
        .filter(key=key, platform=platform, enabled=True, bot__enabled=True, bot__tenant__is_active=True)
        .first()
    )
    if ttl > 0:
        with _webhook_lock:
            if len(_webhook_channels) > 10_000:  # unknown keys probed at random must not grow it forever
                _webhook_channels.clear()
            _webhook_channels[(platform, key)] = (now + ttl, channel)
    return channel


def forget_webhook_channels() -> None:
    """Drop this process's cached webhook channel lookups."""
    with _webhook_lock:
        _webhook_channels.clear()


@receiver(post_save, sender=Channel)
@receiver(post_delete, sender=Channel)
@receiver(post_save, sender=Bot)
@receiver(post_delete, sender=Bot)
@receiver(post_save, sender=Tenant)
@receiver(post_delete, sender=Tenant)
def _forget_on_change(**kwargs) -> None:
    forget_webhook_channels()


def validate_credentials(platform: str, credentials: dict, *, enabled: bool = True) -> list[str]:
    """Problems with a channel's credentials for ``platform``, as messages (empty: fine)."""
    from .platforms.registry import get_adapter

    adapter = get_adapter(platform)
    if adapter is None or not adapter.credential_keys:
        return []
    errors = []
    unknown = sorted(set(credentials) - set(adapter.credential_keys))
    if unknown:
        errors.append(
            f"Unknown credential key(s) for {platform}: {', '.join(unknown)}. "
            f"Expected: {', '.join(adapter.credential_keys)}."
        )
    if enabled:
        missing = [k for k in adapter.required_credentials if not credentials.get(k)]
        if missing:
            errors.append(f"Missing credential(s) for {platform}: {', '.join(missing)}.")
    return errors


def channel_send_test(*, channel: Channel, chat_id: str, user_id: str = "", is_group: bool = False) -> tuple[bool, str]:
    """Send a test message through the channel's platform. Returns (ok, what the platform said)."""
    from .platforms.base import PlatformError, Target
    from .platforms.registry import get_adapter

    adapter = get_adapter(channel.platform)
    if adapter is None:
        return False, f"No adapter is installed for platform '{channel.platform}'."
    try:
        ref = adapter.send_test_message(channel, Target(chat_id=chat_id, user_id=user_id, is_group=is_group))
    except PlatformError as exc:
        return False, f"The platform refused the message: {exc}"
    except NotImplementedError:
        return False, f"Sending is not supported for platform '{channel.platform}'."
    return True, f"Sent. Platform message id: {ref.platform_message_id or '(none returned)'}"
