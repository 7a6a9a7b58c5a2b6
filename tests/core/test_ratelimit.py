"""Rate-limit chains (apps/core/ratelimit.py): several limits counted in order in one cache round
trip on Redis, the same counts as ``hit`` on any cache."""

from __future__ import annotations

from apps.core import ratelimit
from apps.core.ratelimit import Limit


def chain(user_limit: int, bot_limit: int, user: str = "u1", now: float = 1000.0):
    return ratelimit.hit_chain([Limit("user", user, user_limit, 60), Limit("bot", "b1", bot_limit, 1)], now=now)


def test_a_chain_allows_until_the_first_limit_is_reached_and_names_it():
    assert [chain(3, 100) for _ in range(3)] == [None, None, None]
    refused = chain(3, 100)
    assert refused is not None and not refused.allowed
    assert (refused.scope, refused.count, refused.limit) == ("user", 4, 3)
    assert 0 < refused.retry_after <= 60


def test_a_message_refused_by_its_users_limit_does_not_use_up_the_bots():
    for _ in range(5):
        chain(1, 3, user="chatty")  # 1 allowed, 4 refused by the user limit
    # The bot's budget (3 per second) still has 2 left: only the allowed message counted.
    assert chain(10, 3, user="u2") is None
    assert chain(10, 3, user="u3") is None
    refused = chain(10, 3, user="u4")
    assert refused is not None and refused.scope == "bot"


def test_chains_and_single_hits_share_one_count():
    ratelimit.hit("user", "u9", limit=2, window_seconds=60, now=1000.0)
    ratelimit.hit("user", "u9", limit=2, window_seconds=60, now=1000.0)
    refused = ratelimit.hit_chain([Limit("user", "u9", 2, 60)], now=1000.0)
    assert refused is not None and refused.count == 3


def test_windows_reset_and_zero_means_unlimited():
    assert chain(1, 100, now=1000.0) is None
    assert chain(1, 100, now=1000.0) is not None
    assert chain(1, 100, now=1060.0) is None  # the next minute's window
    assert all(chain(0, 0) is None for _ in range(50))
