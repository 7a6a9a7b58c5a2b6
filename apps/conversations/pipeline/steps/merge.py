"""Merge: short messages written in quick succession are answered together.

Two rules, a bot setting (``Bot.merge_mode``):

* **burst** (the default): a lone message is answered at once. A short message written less than
  the bot's merge window after the sender's previous one is the middle of a burst: it is held
  until the window after its own arrival has passed, so the burst's last message is answered once
  with all of its text. An answer already being made when the sender writes again is interrupted
  by the newer message (the store step stores nothing for it) and the newer one is answered with
  both texts in its context.
* **window**: every short ordinary message is held until the bot's merge window after it arrived
  has passed (the rule before burst existed: every answer waits the whole window).

Then the database is asked, in one snapshot: does this worker still own the message, has the
sender written again (that newer message is answered instead, with this one's text in its
context), are earlier messages of theirs still waiting for their task (they are folded into this
answer), and which turns make the context. Earlier messages claimed a moment ago by other workers
store their turn within milliseconds; the answer waits for them (up to ``IN_FLIGHT_WAIT_S``) so
their text is in it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from ...commands import parse_command
from ...models import InboundMessage
from ..context import dominant_in
from ..turn import CONTINUE, DONE, Outcome, Turn

S = InboundMessage.Status

#: An earlier message of the same sender, claimed by another worker, is waited for (up to
#: ``IN_FLIGHT_WAIT_S``) when it arrived at most the merge window plus this long before.
IN_FLIGHT_GRACE_MS = 2000
IN_FLIGHT_WAIT_S = 1.0
IN_FLIGHT_POLL_S = 0.02

#: Messages longer than this are answered at once, not held for the merge window.
MERGE_MAX_CHARS = 500


def merge_applies(bot, text: str) -> bool:
    """Whether a message may be held for the bot's merge window (short ordinary messages only)."""
    return bot.merge_window_ms > 0 and len(text) <= MERGE_MAX_CHARS and parse_command(text) is None


def holds_every_message(bot) -> bool:
    """The fixed-window rule: every short message waits the window (``merge_mode = window``)."""
    return bot.merge_mode == bot.MergeMode.WINDOW


def mid_burst(bot, received_at, previous_at) -> bool:
    """Whether a message came less than the merge window after the sender's previous one."""
    if previous_at is None:
        return False
    return (received_at - previous_at).total_seconds() * 1000 < bot.merge_window_ms


def _hold_until_window_passed(turn: Turn) -> None:
    inbound, bot = turn.inbound, turn.bot
    wait = inbound.received_at.timestamp() + bot.merge_window_ms / 1000 - time.time()
    if wait > 0:
        time.sleep(min(wait, bot.merge_window_ms / 1000))


def _settled_snapshot(turn: Turn):
    """The snapshot, once earlier messages claimed by other workers have stored their turn."""
    inbound, bot, storage = turn.inbound, turn.bot, turn.storage
    in_flight_since = inbound.received_at - timedelta(milliseconds=bot.merge_window_ms + IN_FLIGHT_GRACE_MS)
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while True:
        snapshot = storage.snapshot(turn, in_flight_since=in_flight_since)
        if not snapshot.in_flight or snapshot.newer is not None or time.monotonic() >= deadline:
            return snapshot
        time.sleep(IN_FLIGHT_POLL_S)


def run(turn: Turn) -> Outcome:
    inbound, bot, storage = turn.inbound, turn.bot, turn.storage
    may_hold = merge_applies(bot, inbound.text)
    if may_hold and holds_every_message(bot):
        _hold_until_window_passed(turn)
    snapshot = _settled_snapshot(turn)
    if (
        may_hold
        and not holds_every_message(bot)
        and snapshot.owned
        and snapshot.newer is None
        and mid_burst(bot, inbound.received_at, snapshot.previous_at)
    ):
        # The sender is writing a burst: give the next message of it the window to arrive.
        _hold_until_window_passed(turn)
        snapshot = _settled_snapshot(turn)
    if snapshot.newer is not None:
        # The sender wrote again before an answer was made: the newer message is answered with the
        # whole context, this turn included (merged), unless the newer one is /stop.
        newer_text = snapshot.newer[1]
        storage.finish(turn, S.INTERRUPTED if parse_command(newer_text) is not None else S.MERGED)
        return DONE
    if not snapshot.owned:
        return DONE  # another worker has taken the message over
    turn.turns = snapshot.turns
    if snapshot.pending and storage.merge_pending(turn, snapshot.pending):
        # The merged turns belong in the context: read it again.
        turn.turns = storage.context_turns(turn.conversation, limit=bot.context_max_turns)
    # The conversation's dominant language over the turns just read (this one among them).
    turn.language = dominant_in(turn.conversation, turn.turns, turn.text_language or turn.language)
    return CONTINUE
