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


def test_a_leader_keeps_its_lock_while_it_works_and_a_dead_ones_goes_within_the_hold(monkeypatch):
    """A live leader renews its short lock (a slow answer is not taken over); a leader that died
    (nobody renews) frees its key within the hold, not after the chain's worst case."""
    from apps.conversations import answer_cache

    monkeypatch.setattr(answer_cache, "LOCK_HOLD_SECONDS", 1.0)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("leader")
        started.set()
        release.wait(10)
        return "slow answer"

    leader = threading.Thread(
        target=single_flight,
        args=(KEY, slow),
        kwargs={"encode": lambda r: {"text": r}, "lock_ttl": 60, "wait_timeout": 60},
    )
    leader.start()
    started.wait(5)
    time.sleep(2.5)  # more than two holds: renewed, so still held
    assert cache.get(KEY + ":flight") is not None
    release.set()
    leader.join(5)
    assert calls == ["leader"]

    # A leader that died: its lock, set with the hold and never renewed, is gone within the hold.
    cache.add(KEY + ":flight", "dead-leader", timeout=1)
    started_at = time.monotonic()
    result, shared = single_flight(KEY, lambda: "mine", encode=lambda r: {"text": r}, lock_ttl=60, wait_timeout=60)
    assert (result, shared) == ("mine", False) and time.monotonic() - started_at < 3
