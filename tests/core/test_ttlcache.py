"""The per-process TTL cache behind channel lookups and a bot's workflows."""

from __future__ import annotations

import threading

import pytest

from apps.core import ttlcache
from apps.core.ttlcache import TTLCache


class Loader:
    """Records each load and answers ``value``."""

    def __init__(self, value: object = "v") -> None:
        self.value = value
        self.calls: list[object] = []

    def __call__(self, key: object):
        def load():
            self.calls.append(key)
            return self.value

        return load


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_fresh_entry_is_served_without_loading_and_an_old_one_loads_again(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ttlcache.time, "monotonic", clock.monotonic)
    cache: TTLCache[str, object] = TTLCache(lambda: 5)
    load = Loader()
    assert cache.get("a", load("a")) == "v"
    clock.now += 4.9
    assert cache.get("a", load("a")) == "v" and load.calls == ["a"]
    assert cache.peek("a") == (True, "v")
    clock.now += 0.2
    assert cache.peek("a") == (False, None)
    load.value = "w"
    assert cache.get("a", load("a")) == "w" and load.calls == ["a", "a"]


def test_none_is_remembered_and_peek_tells_it_from_a_miss():
    cache: TTLCache[str, object] = TTLCache(lambda: 60)
    assert cache.peek("nobody") == (False, None)
    load = Loader(None)
    assert cache.get("nobody", load("nobody")) is None
    assert cache.get("nobody", load("nobody")) is None
    assert load.calls == ["nobody"] and cache.peek("nobody") == (True, None)


def test_zero_ttl_loads_every_time_and_the_ttl_is_read_when_storing():
    seconds = [0.0]
    cache: TTLCache[str, object] = TTLCache(lambda: seconds[0])
    load = Loader()
    cache.get("a", load("a"))
    cache.get("a", load("a"))
    assert load.calls == ["a", "a"] and len(cache) == 0
    seconds[0] = 30  # a changed setting applies to the next lookup
    cache.get("a", load("a"))
    cache.get("a", load("a"))
    assert load.calls == ["a", "a", "a"]


def test_clear_forgets_everything():
    cache: TTLCache[str, object] = TTLCache(lambda: 60)
    load = Loader()
    cache.get("a", load("a"))
    cache.get("b", load("b"))
    cache.clear()
    assert cache.peek("a") == (False, None) and len(cache) == 0
    cache.get("a", load("a"))
    assert load.calls == ["a", "b", "a"]


def test_a_load_in_flight_during_clear_does_not_store_its_stale_answer():
    cache: TTLCache[str, object] = TTLCache(lambda: 60)
    started, cleared = threading.Event(), threading.Event()

    def slow_load():
        started.set()
        assert cleared.wait(5)
        return "read before the change"

    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(cache.get("a", slow_load)))
    worker.start()
    assert started.wait(5)
    cache.clear()  # e.g. post_save of the row the load was reading
    cleared.set()
    worker.join(5)
    assert result == ["read before the change"]  # the caller gets what it read …
    assert cache.peek("a") == (False, None)  # … but the next one reads again
    assert cache.get("a", lambda: "after") == "after" and cache.peek("a") == (True, "after")


def test_max_keys_drops_the_oldest():
    cache: TTLCache[int, object] = TTLCache(lambda: 60, max_keys=3)
    for key in range(3):
        cache.get(key, lambda k=key: f"v{k}")
    cache.get(3, lambda: "v3")
    assert len(cache) == 3
    assert cache.peek(0) == (False, None)
    assert [cache.peek(k) for k in (1, 2, 3)] == [(True, "v1"), (True, "v2"), (True, "v3")]


def test_a_failing_load_stores_nothing():
    cache: TTLCache[str, object] = TTLCache(lambda: 60)

    def broken():
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        cache.get("a", broken)
    assert cache.peek("a") == (False, None)
