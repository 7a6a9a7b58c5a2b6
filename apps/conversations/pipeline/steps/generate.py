"""Generate: the bot's models answer, tried in order by the router (each within its deadline,
past an open breaker), streamed to platforms that show answers as they are made.

A context-free question (``turn.cache_key``) makes one model call however many identical ones are
in flight at once: the first asker leads, the others wait for its answer (single-flight, across
processes on Redis); the leader fills the answer cache when the bot caches answers. The answer
stops when the sender writes again (or sends /stop) or another worker takes the message over; the
message is then finished as interrupted.

A bot with tools answers through the tool loop (``..tools``): the model may call them, round by
round, before it answers; a sensitive tool's confirmation prompt ends the handling instead.
"""

from __future__ import annotations

import time

from apps.bots.routing import failure_text
from apps.core import metrics
from apps.llm import router
from apps.llm.types import Answer

from ...answer_cache import from_shared, set_answer, shareable, single_flight
from ...models import InboundMessage
from .. import tools
from ..sending import reply_and_finish
from ..storage import lease_seconds
from ..turn import CONTINUE, DONE, Outcome, Turn
from ..turns import latest_id
from .cached_answer import lookup

S = InboundMessage.Status
#: How much longer than the models' worst case a single-flight waiter waits for its leader.
FLIGHT_MARGIN_S = 5


class Canceller:
    """The ``cancelled`` callable given to the router: True once the sender has written again (or
    sent /stop) or another worker has taken the message over. Cheap enough to call per token: the
    cache is read at most every 100 ms, the claim renewed every quarter lease."""

    CHECK_EVERY = 0.1

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.cancelled = False
        # The database was asked "written again?" just before (the snapshot): the cache is first
        # read one interval from now.
        self._last_check = time.monotonic()
        self._last_touch = time.monotonic()
        self._touch_every = max(1.0, lease_seconds() / 4)

    def __call__(self) -> bool:
        if self.cancelled:
            return True
        now = time.monotonic()
        if now - self._last_check >= self.CHECK_EVERY:
            self._last_check = now
            latest = latest_id(self.turn.inbound)
            if latest is not None and latest > self.turn.inbound.pk:
                self.cancelled = True
        if not self.cancelled and now - self._last_touch >= self._touch_every:
            self._last_touch = now
            if not self.turn.storage.touch(self.turn):
                self.cancelled = True
        return self.cancelled


def run(turn: Turn) -> Outcome:
    if turn.answer is not None:
        return CONTINUE
    cancelled = Canceller(turn)
    if turn.tools:
        answer = tools.answer(turn, cancelled)
        if answer is None:  # a sensitive tool waits for the user's "yes"
            reply_and_finish(turn, text=turn.tool_prompt, source="system", status=S.ANSWERED, language=turn.language)
            return DONE
    else:
        answer = _shared(turn, cancelled) if turn.cache_key else _ask(turn, cancelled)
    if answer.cancelled or cancelled.cancelled:
        turn.drop_stream()
        turn.storage.finish(turn, S.INTERRUPTED)
        return DONE
    turn.answer = answer
    return CONTINUE


def _ask(turn: Turn, cancelled: Canceller) -> Answer:
    bot = turn.bot
    return router.generate(
        turn.chain,
        turn.messages,
        fail_text=failure_text(bot),
        language=turn.language,
        on_token=turn.on_token,
        cancelled=cancelled,
        tenant=bot.tenant.slug,
        bot=bot.slug,
    )


def _shared(turn: Turn, cancelled: Canceller) -> Answer:
    """One model call for every identical question in flight (see the module's docstring)."""
    started = time.monotonic()
    bot = turn.bot
    key = turn.cache_key

    def lead() -> Answer:
        # Re-check: a flight that finished just before this one started may have filled the cache.
        if bot.cache_answers and (hit := lookup(turn)) is not None:
            return hit
        answer = _ask(turn, cancelled)
        payload = shareable(answer)
        if bot.cache_answers and payload and answer.source == "model" and not answer.failed:
            set_answer(key, payload, int(bot.cache_ttl_seconds))
        return answer

    # How long a waiter waits for the leader: the whole chain's worst case in this turn's mode.
    budget = router.worst_case_seconds(turn.chain, streaming=turn.on_token is not None) + FLIGHT_MARGIN_S
    result, shared = single_flight(
        key, lead, encode=shareable, lock_ttl=budget, wait_timeout=budget, cancelled=cancelled
    )
    if not shared:
        return result  # type: ignore[return-value]
    if result is None:
        return Answer(text="", cancelled=True)
    metrics.record_cache_lookup(tenant=bot.tenant.slug, bot=bot.slug, kind="single_flight", hit=True)
    turn.stream(result["text"])  # type: ignore[index]
    return from_shared(result, latency_ms=int((time.monotonic() - started) * 1000))  # type: ignore[arg-type]
