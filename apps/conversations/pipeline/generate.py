"""The generate step: context → model router, with a cancel check that stops a stale answer."""

from __future__ import annotations

import time

from apps.channels.platforms.registry import get_adapter
from apps.llm import router
from apps.llm.types import Answer

from ..models import Conversation, Message
from .claim import Claim, lease_seconds
from .context import build_context
from .deliver import target_for
from .turns import latest_id


class Canceller:
    """The ``cancelled`` callable given to the router: True once the sender has written again (or
    sent /stop) or another worker has taken the message over. Cheap enough to call per token: the
    cache is read at most every 100 ms, the claim renewed every quarter lease."""

    CHECK_EVERY = 0.1

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
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
            latest = latest_id(self.claim.inbound)
            if latest is not None and latest > self.claim.inbound.pk:
                self.cancelled = True
        if not self.cancelled and now - self._last_touch >= self._touch_every:
            self._last_touch = now
            if not self.claim.touch():
                self.cancelled = True
        return self.cancelled


def generate_answer(claim: Claim, conv: Conversation, *, language: str, turns: list[Message] | None = None) -> Answer:
    """Ask the model router for the answer to the conversation as it stands. Returns an ``Answer``
    (``cancelled=True`` when the sender wrote again while it was being made). ``turns``: the
    context turns, when the caller read them already. The bot's models and knowledge digest read
    with the claim are handed to the router, which then reads neither again."""
    inbound = claim.inbound
    bot = conv.bot
    messages, question = build_context(
        conv, mask_pii=bot.pii_policy == bot.PiiPolicy.MASK, language=language, turns=turns
    )
    adapter = get_adapter(inbound.channel.platform)
    on_token = None
    if adapter is not None:
        on_token = adapter.token_sink(inbound.channel, target_for(inbound), reply_ref=f"inbound-{inbound.pk}")
    cancelled = Canceller(claim)
    # ``question`` (context-free turns only) lets the router answer from a knowledge entry or the
    # answer cache, and share one model call among identical questions in flight.
    answer = router.generate(
        bot=bot,
        messages=messages,
        language=language,
        on_token=on_token,
        cancelled=cancelled,
        question=question,
        models=claim.models if bot is inbound.channel.bot else None,
        knowledge_stamp=claim.knowledge_stamp,
    )
    if cancelled.cancelled and not answer.cancelled:
        answer.cancelled = True
    return answer
