"""The ``run_connectors`` process: one long connection per enabled long-connection channel.

Every ``poll_seconds`` the supervisor reads the channels in long-connection mode whose channel, bot
and tenant are enabled, and starts, restarts (platform, key, API base or credentials changed) or
stops their runners — admin changes apply without a restart. A runner first takes its channel's
lock (``locks.py``); without it the runner stands by and tries again every ``poll_seconds``, so a
second process takes over when the holder dies. While it holds the lock it renews it every third of
the TTL and keeps the connection up: a dropped or failed connection is made again after a delay
that doubles per failure up to ``backoff_max`` (with jitter, so a platform outage does not end in a
thundering herd); a connection that stayed up ``stable_seconds`` starts the count again.

Events are stored on one thread per channel (the ORM is synchronous, and one thread keeps a chat's
messages in the order they arrived) and acknowledged once stored; the pipeline runs in the workers
as for webhooks. Log lines carry the channel key and its state; the gauge
``parley_connector_channels_connected`` and the counter ``parley_connector_reconnects_total`` show
the same to Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from apps.channels import conversation_port
from apps.channels.platforms.base import Inbound, WebhookRejected
from apps.channels.platforms.registry import connector_class, long_connection_platforms
from apps.core import metrics
from apps.core.crypto import SecretDecryptionError
from apps.core.logging import log_context, new_trace_id

from . import status
from .base import ConnectorError, Link
from .locks import LocalLocks, RedisLocks, holder_name, make_locks

logger = logging.getLogger("apps.channels.connectors")

#: Runner states the holder of a channel shows in the admin (``status.py``).
PUBLISHED_STATES = frozenset({"holding", "connecting", "connected", "reconnecting"})


@dataclass
class Options:
    poll_seconds: float = 10.0  # how often channels are re-read and free locks tried
    lock_ttl: float = 30.0  # a dead holder's channels are taken over within this
    backoff_base: float = 1.0  # the first reconnect delay (before jitter)
    backoff_max: float = 60.0  # the longest reconnect delay
    stable_seconds: float = 60.0  # a connection up this long resets the backoff


ENV_OPTIONS = {
    "poll_seconds": ("PARLEY_CONNECTORS_POLL_SECONDS", 0.1),
    "lock_ttl": ("PARLEY_CONNECTORS_LOCK_TTL", 1.0),
    "backoff_base": ("PARLEY_CONNECTORS_BACKOFF_BASE", 0.01),
    "backoff_max": ("PARLEY_CONNECTORS_BACKOFF_MAX", 0.01),
}


def options_from_env(**given: float | None) -> Options:
    """Options as given (command-line flags), else from their ``PARLEY_CONNECTORS_*`` setting (from
    the environment, config/settings.py), else the defaults; each held to a sane floor.
    ``ValueError`` names a bad variable."""
    defaults = Options()
    values: dict[str, float] = {}
    for name, (env_name, floor) in ENV_OPTIONS.items():
        value = given.get(name)
        if value is None:
            raw = str(getattr(settings, env_name)).strip()  # declared in config/settings.py
            try:
                value = float(raw) if raw else getattr(defaults, name)
            except ValueError:
                raise ValueError(f"{env_name} must be a number of seconds, not {raw[:40]!r}") from None
        values[name] = max(floor, value)
    return Options(**values)


def backoff_delay(attempt: int, options: Options, *, permanent: bool = False) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): doubling from ``backoff_base`` up to
    ``backoff_max``, drawn between half and all of it. An error retrying cannot fix waits the most."""
    if permanent:
        ceiling = options.backoff_max
    else:
        ceiling = min(options.backoff_max, options.backoff_base * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)


def fingerprint(channel: Any) -> str:
    """What a running connection depends on: a change restarts it."""
    material = json.dumps(
        [channel.platform, channel.key, channel.api_base, channel.credentials], sort_keys=True, default=str
    )
    return hashlib.sha256(material.encode()).hexdigest()


def load_channels() -> dict[int, Any]:
    """Enabled long-connection channels (with enabled bot and tenant) of platforms that have a
    connector, by id. A channel whose credentials cannot be decrypted is left out and logged."""
    from apps.channels.models import Channel

    queryset = Channel.objects.select_related("bot", "bot__tenant").filter(
        mode=Channel.Mode.LONG_CONNECTION,
        enabled=True,
        bot__enabled=True,
        bot__tenant__is_active=True,
        platform__in=long_connection_platforms(),
    )
    try:
        try:
            rows = list(queryset)
        except SecretDecryptionError:
            rows = []
            for pk, key in queryset.values_list("pk", "key"):
                try:
                    rows.append(queryset.get(pk=pk))
                except SecretDecryptionError:
                    logger.error(
                        "channel %s not connected: its credentials cannot be decrypted; check PARLEY_ENCRYPTION_KEYS",
                        key,
                        extra={"channel": key, "state": "refused"},
                    )
        _warn_unserved(Channel)
        return {row.pk: row for row in rows}
    finally:
        close_old_connections()


_warned_unserved: set[str] = set()


def _warn_unserved(channel_model: Any) -> None:
    """Log once per channel a long-connection channel no connector can serve (saved before the admin
    refused it, or by a config import): its messages would otherwise silently never arrive."""
    unserved = channel_model.objects.filter(mode=channel_model.Mode.LONG_CONNECTION, enabled=True).exclude(
        platform__in=long_connection_platforms()
    )
    for key, platform in unserved.values_list("key", "platform"):
        if key not in _warned_unserved:
            _warned_unserved.add(key)
            logger.warning(
                "channel %s not connected: %s has no long-connection mode in Parley; set the channel to webhook mode",
                key,
                platform,
                extra={"channel": key, "platform": platform, "state": "refused"},
            )


def describe(exc: BaseException) -> str:
    """A log-safe account of a connection failure: our own messages, else the exception's type
    (library messages can quote URLs, and platform URLs carry tickets and tokens)."""
    if isinstance(exc, ConnectorError):
        return str(exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__} (HTTP {status})" if isinstance(status, int) else type(exc).__name__


class ChannelLog(logging.LoggerAdapter):
    """Log lines that carry the channel key and platform, and the call's own ``extra`` too (the
    standard adapter replaces it)."""

    def __init__(self, key: str, platform: str) -> None:
        super().__init__(logger, {"channel": key, "platform": platform})

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


class ChannelRunner:
    """Holds one channel: its lock, its connection (reconnecting), its storing thread."""

    def __init__(self, supervisor: Supervisor, channel: Any) -> None:
        self.supervisor = supervisor
        self.options = supervisor.options
        self.channel = channel
        self.channel_id = channel.pk
        self.key = channel.key
        self.platform = channel.platform
        self.fingerprint = fingerprint(channel)
        cls = connector_class(channel.platform)
        assert cls is not None
        self.connector = cls()
        self.log = ChannelLog(self.key, self.platform)
        self.state = ""
        self.status: status.Status | None = None  # what this process last showed the admin
        self.lock_lost = False
        self.connected_since: float | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"connector-{self.channel_id}")
        self.task = asyncio.create_task(self._main(), name=f"connector:{self.key}")

    # -- state ---------------------------------------------------------------------------------

    def _state(self, state: str, message: str, *args: Any, level: int = logging.INFO, **extra: Any) -> None:
        self.state = state
        self.log.log(level, f"channel %s: {message}", self.key, *args, extra={"state": state, **extra})
        if state in PUBLISHED_STATES:
            reason = str(extra.get("reason") or "")
            self.status = status.Status(state, self.supervisor.holder, time.time(), reason)
            self._publish()

    def _publish(self) -> None:
        """Show the admin this channel's state (``status.py``), off the event loop, in order."""
        if self.status is not None:
            publish = functools.partial(status.publish, self.channel_id, self.status, ttl=self.options.lock_ttl)
            asyncio.get_running_loop().run_in_executor(self.executor, publish)

    def _withdraw(self) -> None:
        if self.status is not None:
            self.status = None
            asyncio.get_running_loop().run_in_executor(self.executor, status.withdraw, self.channel_id)

    def _connected(self) -> None:
        if self.connected_since is None:
            self.connected_since = time.monotonic()
            metrics.CONNECTORS_CONNECTED.labels(self.platform).inc()
            self._state("connected", "connected")

    def _disconnected(self) -> float:
        """Mark the connection down; returns how long it was up (0 when it never came up)."""
        if self.connected_since is None:
            return 0.0
        up = time.monotonic() - self.connected_since
        self.connected_since = None
        metrics.CONNECTORS_CONNECTED.labels(self.platform).dec()
        return up

    # -- the lock ------------------------------------------------------------------------------

    async def _main(self) -> None:
        locks = self.supervisor.locks
        standby_logged = ""
        while True:
            try:
                acquired = await locks.acquire(self.channel_id)
                why = "held by another run_connectors process; standing by"
            except Exception as exc:  # Redis away: stand by and try again
                acquired, why = False, f"lock store unreachable ({describe(exc)}); standing by"
            if not acquired:
                if standby_logged != why:
                    self._state("standby", "%s", why)
                    standby_logged = why
                await asyncio.sleep(self.options.poll_seconds)
                continue
            standby_logged = ""
            self.lock_lost = False
            self._state("holding", "lock taken")
            try:
                await self._hold()
            finally:
                self._disconnected()
                if self.lock_lost:
                    self.status = None  # the new holder shows its own state
                else:
                    self._withdraw()  # before the lock goes, so a new holder's state is never erased
                with contextlib.suppress(Exception):
                    await asyncio.shield(locks.release(self.channel_id))

    async def _hold(self) -> None:
        connection = asyncio.create_task(self._connect_loop())
        renewal = asyncio.create_task(self._renew_loop())
        try:
            await asyncio.wait({connection, renewal}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (connection, renewal):
                task.cancel()
            await asyncio.gather(connection, renewal, return_exceptions=True)

    async def _renew_loop(self) -> None:
        """Returns when the lock is lost (taken over after a pause, or unrenewable for a whole TTL)."""
        interval = self.options.lock_ttl / 3
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.supervisor.locks.renew(self.channel_id):
                    self.lock_lost = True
                    self._state("standby", "lock lost to another process; disconnecting", level=logging.WARNING)
                    return
                last_ok = time.monotonic()
                self._publish()  # keep the admin's entry alive as long as the lock
            except Exception as exc:
                if time.monotonic() - last_ok >= self.options.lock_ttl:
                    reason = describe(exc)
                    self._state("standby", "lock not renewable (%s); disconnecting", reason, level=logging.WARNING)
                    return
                self.log.warning("channel %s: lock renewal failed (%s)", self.key, describe(exc))

    # -- the connection --------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        attempt = 0
        link = Link(
            channel=self.channel, deliver=self._deliver, connected=self._connected, log=self.log, call=self._call
        )
        while True:
            link.channel = self.channel
            self._state("connecting", "connecting")
            graceful, permanent = False, False
            try:
                await self.connector.run(link)
                graceful, reason = True, "the platform asked for a reconnect"
            except asyncio.CancelledError:
                raise
            except ConnectorError as exc:
                reason, permanent = describe(exc), exc.permanent
            except Exception as exc:  # network errors, protocol errors, a closed socket
                reason = describe(exc)
            up = self._disconnected()
            if up >= self.options.stable_seconds:
                attempt = 0
            delay = 0.0 if graceful and attempt == 0 else backoff_delay(attempt, self.options, permanent=permanent)
            attempt += 1
            metrics.CONNECTOR_RECONNECTS.labels(self.platform).inc()
            self._state(
                "reconnecting",
                "connection ended (%s); reconnecting in %.1f s",
                reason,
                delay,
                level=logging.INFO if graceful else logging.WARNING,
                reason=reason,
            )
            await asyncio.sleep(delay)

    async def _deliver(self, build: Callable[[Any], list[Inbound]]) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._store, self.channel, build)

    async def _call(self, work: Callable[[Any], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._run_work, self.channel, work)

    def _run_work(self, channel: Any, work: Callable[[Any], Any]) -> Any:
        close_old_connections()
        try:
            with log_context(
                tenant=channel.bot.tenant.slug, bot=channel.bot.slug, platform=channel.platform, trace_id=new_trace_id()
            ):
                return work(channel)
        except Exception:
            self.log.exception("channel %s: handling an event failed", self.key)
            return None
        finally:
            close_old_connections()

    def _store(self, channel: Any, build: Callable[[Any], list[Inbound]]) -> bool:
        close_old_connections()
        trace_id = new_trace_id()
        try:
            with log_context(
                tenant=channel.bot.tenant.slug, bot=channel.bot.slug, platform=channel.platform, trace_id=trace_id
            ):
                try:
                    inbounds = build(channel)
                except WebhookRejected as exc:  # an event that can never be understood: drop it
                    metrics.INBOUND_MESSAGES.labels(channel.platform, exc.outcome).inc()
                    self.log.warning("channel %s: event dropped: %s", self.key, exc.reason)
                    return True
                if inbounds:
                    conversation_port.accept(channel=channel, inbounds=inbounds, trace_id=trace_id)
                return True
        except Exception:
            self.log.exception("channel %s: storing an event failed; left for the platform to deliver again", self.key)
            return False
        finally:
            close_old_connections()

    async def stop(self, reason: str) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await asyncio.to_thread(self.executor.shutdown, True)
        self._state("stopped", "stopped (%s)", reason)


class Supervisor:
    """Runs every enabled long-connection channel until ``stop`` is set (see the module docstring)."""

    def __init__(self, options: Options | None = None, *, holder: str = "") -> None:
        self.options = options or Options()
        self.holder = holder or holder_name()
        self.runners: dict[int, ChannelRunner] = {}
        self.locks: RedisLocks | LocalLocks

    async def run(self, stop: asyncio.Event) -> None:
        self.locks = make_locks(holder=self.holder, ttl=self.options.lock_ttl)
        logger.info(
            "run_connectors started (%s locks; channels re-read every %g s)",
            self.locks.kind,
            self.options.poll_seconds,
            extra={"holder": self.holder, "state": "started"},
        )
        try:
            while not stop.is_set():
                try:
                    await self.reconcile()
                except Exception as exc:  # the database away: keep what runs, try again
                    logger.warning("reading channels failed (%s); trying again", describe(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.options.poll_seconds)
        finally:
            await asyncio.gather(*(r.stop("shutting down") for r in self.runners.values()), return_exceptions=True)
            self.runners.clear()
            await self.locks.close()
            logger.info("run_connectors stopped", extra={"holder": self.holder, "state": "stopped"})

    async def reconcile(self) -> None:
        wanted = await asyncio.to_thread(load_channels)
        for channel_id, runner in list(self.runners.items()):
            channel = wanted.get(channel_id)
            if channel is None:
                del self.runners[channel_id]
                await runner.stop("disabled, removed or switched to webhook mode")
            elif fingerprint(channel) != runner.fingerprint:
                del self.runners[channel_id]
                await runner.stop("settings changed")
            else:
                runner.channel = channel  # bot and tenant settings as saved now
        for channel_id, channel in wanted.items():
            if channel_id not in self.runners:
                self.runners[channel_id] = ChannelRunner(self, channel)

    def states(self) -> dict[str, str]:
        """Channel key → state (connected, connecting, reconnecting, standby…), for tests and checks."""
        return {r.key: r.state for r in list(self.runners.values())}  # read from other threads


class BackgroundSupervisor:
    """A ``Supervisor`` on a daemon thread with its own event loop: ``manage.py run`` holds the
    long connections in the serving process this way, so one command is the whole of Parley.
    ``stop`` closes the connections and releases the channel locks, as SIGTERM does for
    ``run_connectors``."""

    def __init__(self, options: Options | None = None) -> None:
        self.supervisor = Supervisor(options)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._main, name="parley-connectors", daemon=True)

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self.supervisor.run(self._stop))
        except Exception:
            logger.exception("the long-connection supervisor stopped on an error")
        finally:
            close_old_connections()

    def start(self) -> BackgroundSupervisor:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> bool:
        """Ask the supervisor to stop and wait up to ``timeout`` seconds; True when it did."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped:
            self._loop.close()
        return stopped
