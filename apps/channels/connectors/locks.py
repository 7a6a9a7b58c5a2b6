"""One holder per channel: who may keep a channel's long connection open.

With Redis (``REDIS_URL``), a key per channel set with NX and a TTL holds the name of the process
that owns the connection; the owner renews it while connected and deletes it on shutdown. A process
that dies stops renewing, the key expires, and another ``run_connectors`` takes the channel over
within one TTL. Renewal and release compare the holder first (one Lua script each), so a process
that lost its key after a long pause never extends or deletes the new owner's.

Without Redis (the embedded default) the lock is process-local: one ``run_connectors`` per
deployment (single node).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

from django.conf import settings

KEY_PREFIX = "parley:connector:holder:"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def holder_name() -> str:
    """This process's name in the locks: host, pid and a random part (pids repeat across hosts)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLocks:
    """Channel locks in Redis, shared by every ``run_connectors`` process of the cluster."""

    kind = "redis"

    def __init__(self, url: str, *, holder: str, ttl: float) -> None:
        import redis.asyncio as aioredis

        self.holder = holder
        self.ttl_ms = max(1000, int(ttl * 1000))
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    async def acquire(self, channel_id: int) -> bool:
        return bool(await self._redis.set(KEY_PREFIX + str(channel_id), self.holder, nx=True, px=self.ttl_ms))

    async def renew(self, channel_id: int) -> bool:
        """True while this process still holds the channel (its TTL starts again)."""
        return bool(await self._renew(keys=[KEY_PREFIX + str(channel_id)], args=[self.holder, self.ttl_ms]))

    async def release(self, channel_id: int) -> None:
        await self._release(keys=[KEY_PREFIX + str(channel_id)], args=[self.holder])

    async def holder_of(self, channel_id: int) -> str:
        value = await self._redis.get(KEY_PREFIX + str(channel_id))
        return value.decode() if value else ""

    async def close(self) -> None:
        await self._redis.aclose()


class LocalLocks:
    """Channel locks in this process only (no Redis): correct for one node, one ``run_connectors``."""

    kind = "local"
    _held: dict[int, str] = {}
    _guard = threading.Lock()

    def __init__(self, *, holder: str, ttl: float) -> None:
        self.holder = holder

    async def acquire(self, channel_id: int) -> bool:
        with self._guard:
            if self._held.get(channel_id, self.holder) != self.holder:
                return False
            self._held[channel_id] = self.holder
            return True

    async def renew(self, channel_id: int) -> bool:
        with self._guard:
            return self._held.get(channel_id) == self.holder

    async def release(self, channel_id: int) -> None:
        with self._guard:
            if self._held.get(channel_id) == self.holder:
                del self._held[channel_id]

    async def holder_of(self, channel_id: int) -> str:
        with self._guard:
            return self._held.get(channel_id, "")

    async def close(self) -> None:
        with self._guard:
            for channel_id in [c for c, h in self._held.items() if h == self.holder]:
                del self._held[channel_id]


def make_locks(*, holder: str, ttl: float) -> RedisLocks | LocalLocks:
    """Redis locks when ``REDIS_URL`` is set, process-local ones otherwise."""
    url = settings.REDIS_URL
    if url:
        return RedisLocks(url, holder=holder, ttl=ttl)
    return LocalLocks(holder=holder, ttl=ttl)
