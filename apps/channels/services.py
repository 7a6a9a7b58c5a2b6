"""Channel lookups used by the webhook view, the consumers and the pipeline."""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext as _

from apps.bots.models import Bot
from apps.core import netguard
from apps.core.ttlcache import TTLCache
from apps.tenants.models import Tenant

from .models import Channel


def channel_cache_seconds() -> float:
    """How long a process reuses a channel lookup (``PARLEY_CHANNEL_CACHE_SECONDS``, default 5; 0
    looks the channel up every time)."""
    return max(0.0, settings.PARLEY_CHANNEL_CACHE_SECONDS)


class ChannelLookups:
    """Enabled channels by platform and key, remembered per process for ``channel_cache_seconds()``.

    Webhooks and web-chat handshakes arrive in bursts (hundreds per second at peak) for a handful of
    channels; with this a burst costs one query per channel, not one per request. Unknown keys are
    remembered too (a flood of made-up keys costs one query per key and period; at most
    ``MAX_KEYS`` are kept). Saving or deleting a channel, bot or tenant in this process forgets
    everything at once (signals below); other processes see such a change within the cache time,
    and queryset ``update()`` calls, which send no signal, wait it out too. The ``Channel`` returned
    is shared by every caller in the process: read it, never change it.
    """

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._cache: TTLCache[tuple[str, str], Channel | None] = TTLCache(channel_cache_seconds, max_keys=self.MAX_KEYS)

    def clear(self) -> None:
        """Forget every lookup, and keep lookups in flight from remembering what they read."""
        self._cache.clear()

    def peek(self, platform: str, key: str) -> tuple[bool, Channel | None]:
        """``(True, channel or None)`` when remembered and fresh, else ``(False, None)`` — no query."""
        return self._cache.peek((platform, key))

    def get(self, platform: str, key: str) -> Channel | None:
        """The enabled channel with this platform and key whose bot and tenant are enabled, or None."""
        return self._cache.get(
            (platform, key),
            lambda: Channel.objects.select_related("bot", "bot__tenant")
            .filter(key=key, platform=platform, enabled=True, bot__enabled=True, bot__tenant__is_active=True)
            .first(),
        )


channel_lookups = ChannelLookups()


def channel_for_webhook(*, platform: str, key: str) -> Channel | None:
    """The enabled channel with this key and platform whose bot and tenant are enabled, or None."""
    return channel_lookups.get(platform, key)


def forget_channels() -> None:
    """Drop this process's remembered channel lookups."""
    channel_lookups.clear()


@receiver(post_save, sender=Channel)
@receiver(post_delete, sender=Channel)
@receiver(post_save, sender=Bot)
@receiver(post_delete, sender=Bot)
@receiver(post_save, sender=Tenant)
@receiver(post_delete, sender=Tenant)
def _forget_on_change(**kwargs) -> None:
    forget_channels()


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
        return False, _("No adapter is installed for platform '%(platform)s'.") % {"platform": channel.platform}
    refused = netguard.check_url(channel.api_base, resolve_host=True) if channel.api_base else ""
    if refused:  # said before anything is sent (the send itself would be refused at connect time)
        return False, _("Not sent: the API base is refused: %(reason)s.") % {"reason": refused}
    try:
        ref = adapter.send_test_message(channel, Target(chat_id=chat_id, user_id=user_id, is_group=is_group))
    except PlatformError as exc:
        if exc.unreachable:
            said = _("Not sent: could not connect to %(address)s (%(reason)s). Check the API base and the network.")
            return False, said % {"address": exc.unreachable, "reason": exc}
        if exc.status is None and not exc.permanent:
            return False, _("Not sent: no answer from the platform (%(reason)s).") % {"reason": exc}
        return False, _("The platform refused the message: %(reason)s") % {"reason": exc}
    except NotImplementedError:
        return False, _("Sending is not supported for platform '%(platform)s'.") % {"platform": channel.platform}
    return True, _("Sent. Platform message id: %(id)s") % {"id": ref.platform_message_id or _("(none returned)")}
