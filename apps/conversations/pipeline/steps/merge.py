"""Merge: short messages written in quick succession are answered together.

A short ordinary message is held until the bot's merge window after it arrived has passed. Then
the database is asked, in one snapshot: does this worker still own the message, has the sender
written again (that newer message is answered instead, with this one's text in its context), are
earlier messages of theirs still waiting for their task (they are folded into this answer), and
which turns make the context. Earlier messages claimed a moment ago by other workers store their
turn within milliseconds; the answer waits for them (up to ``IN_FLIGHT_WAIT_S``) so their text is
in it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from ...commands import parse_command
from ...models import InboundMessage
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
    """Whether a message is held for the bot's merge window (short ordinary messages only)."""
    return bot.merge_window_ms > 0 and len(text) <= MERGE_MAX_CHARS and parse_command(text) is None


def run(turn: Turn) -> Outcome:
    inbound, bot, storage = turn.inbound, turn.bot, turn.storage
    if merge_applies(bot, inbound.text):
        wait = inbound.received_at.timestamp() + bot.merge_window_ms / 1000 - time.time()
        if wait > 0:
            time.sleep(min(wait, bot.merge_window_ms / 1000))
    in_flight_since = inbound.received_at - timedelta(milliseconds=bot.merge_window_ms + IN_FLIGHT_GRACE_MS)
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while True:
        snapshot = storage.snapshot(turn, in_flight_since=in_flight_since)
        if not snapshot.in_flight or snapshot.newer is not None or time.monotonic() >= deadline:
            break
        time.sleep(IN_FLIGHT_POLL_S)
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
    return CONTINUE
