"""Answer cache and single-flight for context-free questions (the pipeline's ``cached_answer``
and ``generate`` steps use them).

Both are keyed by tenant + bot + the normalized question + language + the versions of the bot and
of the models that would answer, so an answer never crosses bots or tenants, and editing the bot's
persona or a model makes the old answers unreachable (they expire by TTL).

Single-flight: when identical questions reach the same bot at once, the first caller (the leader,
who wins an atomic ``cache.add`` — SET NX on Redis) calls the model; the others wait for the
leader's published result instead of calling the model themselves. Works across processes on Redis
and across threads on the local-memory cache. A waiter whose leader vanishes (crashed, cancelled)
takes over; a waiter never waits longer than ``wait_timeout``.

The leader's lock is held for at most ``LOCK_HOLD_SECONDS`` at a time and renewed every third of
that while the leader computes, so the lock of a leader whose process died (SIGKILL, OOM) goes
within seconds — not after the whole chain's worst case, which for a streamed answer is minutes.
Until then its waiters, and its own message re-driven after the claim's lease, would wait for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

from apps.bots.knowledge import normalize_question
from apps.llm.types import Answer

T = TypeVar("T")

RESULT_TTL = 60  # seconds a published single-flight result stays readable for its waiters
LOCK_HOLD_SECONDS = 10.0  # a leader's lock lasts this long unless renewed (every third of it)


def question_key(*, tenant_id: int, bot_id: int, question: str, language: str, versions: str) -> str:
    """The cache key stem for ``question`` asked of one bot ('' when the question normalizes to nothing)."""
    normalized = normalize_question(question)
    if not normalized:
        return ""
    digest = hashlib.sha256(f"{language}\x00{versions}\x00{normalized}".encode()).hexdigest()[:40]
    return f"llm:q:{tenant_id}:{bot_id}:{digest}"


def get_answer(key: str) -> dict | None:
    return cache.get(key + ":ans") if key else None


def set_answer(key: str, payload: dict, ttl: int) -> None:
    if key and ttl > 0:
        cache.set(key + ":ans", payload, timeout=ttl)


def single_flight(
    key: str,
    compute: Callable[[], T],
    *,
    encode: Callable[[T], dict | None],
    lock_ttl: float,
    wait_timeout: float,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[T | dict | None, bool]:
    """Run ``compute`` once for all concurrent callers of ``key``.

    Returns ``(result, False)`` to the leader (``compute``'s own result) and ``(payload, True)`` to
    a waiter (the leader's ``encode(result)``). A waiter that is cancelled gets ``(None, True)``.
    ``encode`` returning None means "not shareable" (e.g. a cancelled answer): waiters then take over.
    """
    lock_key = key + ":flight"
    flight_id = uuid.uuid4().hex
    give_up_at = time.monotonic() + wait_timeout
    while True:
        hold = max(1, int(min(lock_ttl, LOCK_HOLD_SECONDS)))
        if cache.add(lock_key, flight_id, timeout=hold):
            result: T | None = None
            done = threading.Event()
            if lock_ttl > hold:
                threading.Thread(
                    target=_keep_lock, args=(lock_key, flight_id, hold, lock_ttl, done), daemon=True
                ).start()
            try:
                result = compute()
                return result, False
            finally:
                done.set()
                payload = encode(result) if result is not None else None
                if payload is not None:
                    # Published before the lock goes, so a waiter that sees no lock finds the result.
                    cache.set(f"{key}:res:{flight_id}", payload, timeout=RESULT_TTL)
                if cache.get(lock_key) == flight_id:
                    cache.delete(lock_key)
        leader = cache.get(lock_key)
        if leader is None:
            continue  # the leader just finished; race for the lock again (the answer cache may hit)
        delay = 0.005
        while True:
            payload = cache.get(f"{key}:res:{leader}")
            if payload is not None:
                return payload, True
            if cancelled is not None and cancelled():
                return None, True
            if cache.get(lock_key) != leader:
                payload = cache.get(f"{key}:res:{leader}")
                if payload is not None:
                    return payload, True
                break  # the leader is gone without a result: try to lead
            if time.monotonic() > give_up_at:
                return compute(), False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _keep_lock(lock_key: str, flight_id: str, hold: int, longest: float, done: threading.Event) -> None:
    """Renew the leader's lock every third of ``hold`` until ``done`` (at most ``longest`` seconds in
    all, the chain's worst case). A lock another leader holds now is left alone."""
    until = time.monotonic() + longest
    while not done.wait(hold / 3) and time.monotonic() < until:
        with contextlib.suppress(Exception):  # a cache hiccup: the next renewal tries again
            if cache.get(lock_key) == flight_id:
                cache.touch(lock_key, hold)


def shareable(answer: Answer) -> dict | None:
    """What single-flight waiters (and the answer cache) get from a leader's answer: nothing of a
    cancelled or cut-off one."""
    if answer.cancelled or answer.truncated:
        return None
    return {
        "text": answer.text,
        "source": answer.source,
        "model_name": answer.model_name,
        "provider": answer.provider,
        "failed": answer.failed,
    }


def from_shared(payload: dict, *, latency_ms: int) -> Answer:
    """The answer a cache hit or a single-flight waiter stores: the shared text, no tokens or cost
    of its own (the leader's answer carries those)."""
    failed = bool(payload.get("failed"))
    return Answer(
        text=payload["text"],
        source="failure" if failed else "cache",
        model_name=payload.get("model_name", ""),
        provider=payload.get("provider", ""),
        latency_ms=latency_ms,
        cached=not failed,
        failed=failed,
    )
