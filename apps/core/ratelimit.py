"""Rate limits kept in the cache (Redis in production, local memory in the embedded default).

Fixed-window counters: one key per scope, subject and window number, counted atomically — on Redis
every web and worker replica shares one count. A fixed window lets a burst of up to twice the limit
through at a window edge; that is acceptable for protecting model spend and keeps each check cheap.

``hit`` counts one limit. ``hit_chain`` counts several in order and stops at the first that
refuses (a message refused by its user's limit does not use up the bot's); on Redis the whole
chain is one round trip (a Lua script), which matters on the webhook path.

``strike`` / ``locked_for`` / ``clear`` are lockouts rather than rates: failures counted from the
first one, and a lock for a while once there are too many (password sign-in, ``apps.accounts.signin``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

KEY_PREFIX = "parley:rl"

# KEYS: the counters; ARGV: limit and ttl for each key in turn. Counts keys in order until one
# is over its limit (that one is counted too, later ones are not); returns the counts so far.
_CHAIN_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[2 * i]) end
  out[i] = n
  if n > tonumber(ARGV[2 * i - 1]) then break end
end
return out
"""


@dataclass(frozen=True)
class Decision:
    """The outcome of one ``hit``: ``allowed``, the count in this window, and seconds until it resets."""

    allowed: bool
    count: int
    limit: int
    retry_after: float
    scope: str = ""


@dataclass(frozen=True)
class Limit:
    """One limit of a ``hit_chain``: at most ``limit`` events per ``window_seconds`` for ``subject``."""

    scope: str
    subject: str
    limit: int
    window_seconds: float


def _key(scope: str, subject: str, window_seconds: float, now: float) -> tuple[str, int, float]:
    window_no = int(now // window_seconds)
    retry_after = (window_no + 1) * window_seconds - now
    return f"{KEY_PREFIX}:{scope}:{subject}:{window_no}", max(1, int(window_seconds) + 1), retry_after


def hit(scope: str, subject: str, *, limit: int, window_seconds: float, now: float | None = None) -> Decision:
    """Count one event for ``subject`` in ``scope`` and say whether it is within ``limit`` per window.

    ``limit`` 0 means unlimited (nothing is counted). Never raises for cache misses: a key that
    expired between ``add`` and ``incr`` is simply created again.
    """
    if limit <= 0:
        return Decision(True, 0, limit, 0.0)
    now = time.time() if now is None else now
    key, ttl, retry_after = _key(scope, subject, window_seconds, now)
    cache.add(key, 0, timeout=ttl)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=ttl)
        count = 1
    return Decision(count <= limit, count, limit, retry_after, scope)


_scripts: dict[int, Any] = {}


def _redis_script() -> Any:
    """The chain script bound to the cache's Redis client, or None when the cache is not Redis."""
    backend = getattr(cache, "_cache", None)  # django.core.cache.backends.redis.RedisCacheClient
    if backend is None or not hasattr(backend, "get_client"):
        return None
    client = backend.get_client(write=True)
    script = _scripts.get(id(client))
    if script is None or script.registered_client is not client:
        script = _scripts[id(client)] = client.register_script(_CHAIN_LUA)
    return script


def hit_chain(limits: list[Limit], *, now: float | None = None) -> Decision | None:
    """Count one event against each limit in order; the first refusing limit's ``Decision`` (its
    ``scope`` says which), or None when every limit allows it. Limits of 0 (unlimited) are skipped."""
    limits = [lim for lim in limits if lim.limit > 0]
    if not limits:
        return None
    now = time.time() if now is None else now
    script = _redis_script()
    if script is None:
        for lim in limits:
            decision = hit(lim.scope, lim.subject, limit=lim.limit, window_seconds=lim.window_seconds, now=now)
            if not decision.allowed:
                return decision
        return None
    keys, argv, retry = [], [], []
    for lim in limits:
        key, ttl, retry_after = _key(lim.scope, lim.subject, lim.window_seconds, now)
        keys.append(cache.make_and_validate_key(key))
        argv += [lim.limit, ttl]
        retry.append(retry_after)
    counts = script(keys=keys, args=argv)
    for lim, count, retry_after in zip(limits, counts, retry, strict=False):
        if int(count) > lim.limit:
            return Decision(False, int(count), lim.limit, retry_after, lim.scope)
    return None


# --- Lockouts: failures counted from the first one, then a lock for a while -----------------------
# A fixed window lets up to twice the limit through at a window edge; for guessing passwords that is
# too generous, so ``strike`` counts failures in a window that starts at the first failure (the key's
# expiry is set once, by ``add``), and the ``limit``-th failure locks the subject for ``lock_seconds``.


def _strike_key(scope: str, subject: str) -> str:
    return f"{KEY_PREFIX}:strikes:{scope}:{subject}"


def _lock_key(scope: str, subject: str) -> str:
    return f"{KEY_PREFIX}:lock:{scope}:{subject}"


def locked_for(scope: str, subject: str, *, now: float | None = None) -> float:
    """Seconds until ``subject``'s lock in ``scope`` ends; 0 when it is not locked."""
    until = cache.get(_lock_key(scope, subject))
    if until is None:
        return 0.0
    now = time.time() if now is None else now
    return max(0.0, float(until) - now)


def strike(
    scope: str, subject: str, *, limit: int, window_seconds: float, lock_seconds: float, now: float | None = None
) -> Decision:
    """Count one failure for ``subject``; the ``limit``-th within ``window_seconds`` of the first
    locks it for ``lock_seconds`` (see ``locked_for``) and starts the count again.

    The ``Decision`` is not ``allowed`` when this failure set the lock (``retry_after``: the lock's
    length). ``limit`` 0 means no lockout (nothing is counted)."""
    if limit <= 0:
        return Decision(True, 0, limit, 0.0, scope)
    now = time.time() if now is None else now
    key = _strike_key(scope, subject)
    ttl = max(1, int(window_seconds))
    cache.add(key, 0, timeout=ttl)
    try:
        count = cache.incr(key)
    except ValueError:  # expired (or cleared) between add and incr
        cache.add(key, 1, timeout=ttl)
        count = 1
    if count < limit:
        return Decision(True, count, limit, 0.0, scope)
    lock_ttl = max(1, int(lock_seconds))
    cache.set(_lock_key(scope, subject), now + lock_ttl, timeout=lock_ttl)
    cache.delete(key)
    return Decision(False, count, limit, float(lock_ttl), scope)


def clear(scope: str, subject: str, *, lock: bool = False) -> None:
    """Forget ``subject``'s failure count in ``scope`` (and, with ``lock``, end its lock)."""
    if lock:
        cache.delete_many([_strike_key(scope, subject), _lock_key(scope, subject)])
    else:
        cache.delete(_strike_key(scope, subject))
