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
