"""A small per-process, time-limited cache for lookups that nearly every request makes.

Used where a burst of requests asks the same few questions of the database (which channel has
this key, which workflows does this bot have) and an answer a few seconds old is good enough.

* Entries live for ``ttl()`` seconds, read when the entry is stored (so a changed setting applies
  to the next lookup); ``ttl() <= 0`` stores nothing and every lookup loads.
* ``None`` is a value like any other: a lookup that found nothing is remembered too.
* ``clear()`` forgets everything, and a load that started before the clear does not store what it
  read (it may be stale): callers clear from ``post_save``/``post_delete`` signals.
* With ``max_keys`` the oldest stored key is dropped to make room (a flood of made-up keys cannot
  grow the cache without bound).

Thread-safe. Values are shared by every caller in the process: read them, never change them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: Callable[[], float], *, max_keys: int | None = None) -> None:
        self._ttl = ttl
        self.max_keys = max_keys
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry, and keep loads in flight from storing what they read."""
        with self._lock:
            self._generation += 1
            self._entries = {}

    def peek(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` when ``key`` is remembered and fresh, else ``(False, None)``; never loads."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The fresh value of ``key``, or ``load()``'s result, remembered for ``ttl()`` seconds.
        Raises whatever ``load`` raises (nothing is stored then)."""
        found, value = self.peek(key)
        if found:
            return value  # type: ignore[return-value]
        generation = self._generation
        loaded = load()
        ttl = self._ttl()
        if ttl > 0:
            with self._lock:
                if generation == self._generation:
                    entries = self._entries
                    entries.pop(key, None)  # a refreshed key counts as the newest
                    if self.max_keys is not None and len(entries) >= self.max_keys:
                        entries.pop(next(iter(entries)), None)
                    entries[key] = (time.monotonic() + ttl, loaded)
        return loaded
