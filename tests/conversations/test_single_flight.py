"""single_flight on its own: a waiter takes over when its leader vanishes or takes too long."""

from __future__ import annotations

import threading
import time

from django.core.cache import cache

from apps.conversations.answer_cache import single_flight

KEY = "llm:q:test:1:abc"


def test_waiter_takes_over_when_the_leader_vanishes_without_a_result():
    cache.add(KEY + ":flight", "dead-leader", timeout=30)  # a leader whose worker died
    vanish = threading.Timer(0.2, lambda: cache.delete(KEY + ":flight"))
    vanish.start()
    calls: list[int] = []
    started = time.monotonic()
    result, shared = single_flight(
        KEY, lambda: calls.append(1) or "mine", encode=lambda r: {"text": r}, lock_ttl=5, wait_timeout=30
    )
    vanish.join()
    assert (result, shared, calls) == ("mine", False, [1])
    assert time.monotonic() - started < 15  # when the leader vanished, not at the waiter's timeout


def test_waiter_gives_up_waiting_after_its_timeout():
    cache.add(KEY + ":flight", "slow-leader", timeout=30)
    started = time.monotonic()
    result, shared = single_flight(KEY, lambda: "mine", encode=lambda r: {"text": r}, lock_ttl=5, wait_timeout=0.3)
    assert (result, shared) == ("mine", False)
    assert 0.3 <= time.monotonic() - started < 5  # at its own timeout, not the leader's lock (30 s)


def test_cancelled_waiter_returns_nothing():
    cache.add(KEY + ":flight", "slow-leader", timeout=30)
    result, shared = single_flight(
        KEY, lambda: "mine", encode=lambda r: {"text": r}, lock_ttl=5, wait_timeout=5, cancelled=lambda: True
    )
    assert (result, shared) == (None, True)


def test_unshareable_result_is_not_published_and_the_lock_is_released():
    result, shared = single_flight(KEY, lambda: "cancelled", encode=lambda r: None, lock_ttl=5, wait_timeout=5)
    assert (result, shared) == ("cancelled", False)
    assert cache.get(KEY + ":flight") is None
