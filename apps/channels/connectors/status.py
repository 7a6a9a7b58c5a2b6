"""What the admin shows of a long-connection channel: is a process holding it, and is it connected?

The process that holds a channel's lock publishes the channel's state to the cache (Redis in
production, so every web process reads it; the process's own memory on the embedded default, where
``manage.py run`` holds the connections itself). It republishes on every lock renewal, with a time
to live of one lock TTL: when no process holds the channel — none running, or the holder died — the
entry is gone within that time and the admin says so. Only the holder writes; processes standing by
do not, so the entry never flips between two writers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from apps.core.cache import soft_get, soft_set

KEY_PREFIX = "parley:connector:status:"


@dataclass(frozen=True)
class Status:
    state: str  # holding | connecting | connected | reconnecting
    holder: str  # host:pid:random of the process holding the channel
    since: float  # epoch seconds the state began
    reason: str = ""  # why the last connection ended (log-safe: no URL, no secret)


def publish(channel_id: int, status: Status, *, ttl: float) -> None:
    soft_set(KEY_PREFIX + str(channel_id), status.__dict__, max(1.0, ttl))


def withdraw(channel_id: int) -> None:
    """The holder let go (shutdown, channel disabled or changed): nothing to show until the next."""
    soft_set(KEY_PREFIX + str(channel_id), None, 1)


def read(channel_id: int) -> Status | None:
    value: Any = soft_get(KEY_PREFIX + str(channel_id))
    if not isinstance(value, dict):
        return None
    try:
        return Status(**value)
    except TypeError:
        return None


def describe(channel: Any) -> str:
    """One line for the admin about a channel's long connection."""
    if channel.mode != "long_connection":
        return "—"
    if not channel.enabled:
        return _("Not connected: the channel is disabled.")
    status = read(channel.pk)
    if status is None:
        return _(
            "Not connected: no process holds this channel. Is `manage.py run_connectors` running "
            "(or `manage.py run`, which holds them on a single node)?"
        )
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.since))
    if status.state == "connected":
        return _("Connected since %(since)s (process %(holder)s).") % {"since": since, "holder": status.holder}
    if status.state == "reconnecting":
        why = f": {status.reason}" if status.reason else ""
        return _("Reconnecting since %(since)s%(why)s (process %(holder)s).") % {
            "since": since,
            "why": why,
            "holder": status.holder,
        }
    return _("Connecting since %(since)s (process %(holder)s).") % {"since": since, "holder": status.holder}
