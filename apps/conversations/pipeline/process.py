"""Handle one stored inbound message: claim → session → workflows → commands → rate limit → merge /
interruption → generate → deliver.

Idempotent and resumable: a message is claimed with a conditional UPDATE; an answer already stored
is re-sent rather than regenerated; an answer already delivered is never sent again; a worker that
lost its claim (it was presumed dead and the message re-driven) stores and sends nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from apps.channels.platforms.base import PlatformError
from apps.core import metrics
from apps.core.language import detect_language
from apps.core.logging import log_context

from ..commands import parse_command, text_for
from ..models import Conversation, InboundMessage
from . import sql
from .claim import Claim, claim_inbound
from .commands import run_command
from .context import read_snapshot
from .deliver import deliver, store_reply
from .generate import generate_answer
from .session import get_conversation, store_user_turn
from .turns import in_flight_turns, newer_turn, sender_rows
from .workflow_step import run_workflows

logger = logging.getLogger(__name__)
S = InboundMessage.Status

#: An earlier message of the same sender, claimed by another worker, is waited for (up to
#: ``IN_FLIGHT_WAIT_S``) when it arrived at most the merge window plus this long before.
IN_FLIGHT_GRACE_MS = 2000
IN_FLIGHT_WAIT_S = 1.0

#: Messages longer than this are answered at once, not held for the merge window.
MERGE_MAX_CHARS = 500


def merge_applies(bot, text: str) -> bool:
    """Whether a message is held for the bot's merge window (short ordinary messages only)."""
    return bot.merge_window_ms > 0 and len(text) <= MERGE_MAX_CHARS and parse_command(text) is None


def process_inbound(inbound_id: int) -> None:
    """Handle one inbound message if it can be claimed. Raises ``PlatformError`` when the reply
    could not be sent (the message is given back for a retry unless the error is permanent) and
    ``DatabaseError`` when the database is unavailable (the task retries)."""
    claim = claim_inbound(inbound_id)
    if claim is None:
        return
    inbound = claim.inbound
    channel = inbound.channel
    bot = channel.bot
    with log_context(
        tenant=bot.tenant.slug, bot=bot.slug, platform=channel.platform, trace_id=inbound.trace_id or None
    ):
        try:
            _handle(claim)
        except PlatformError as exc:
            claim.release(error=str(exc), permanent=exc.permanent)
            logger.warning("reply not delivered", extra={"inbound": inbound.pk, "permanent": exc.permanent})
            raise
        except Exception as exc:
            # Given back, not failed: it is tried again (the task retries database outages, the
            # sweeper re-drives the rest) and given up after MAX_ATTEMPTS.
            with contextlib.suppress(DatabaseError):
                claim.release(error=f"{type(exc).__name__}: {exc}", permanent=False)
            logger.exception("message handling failed", extra={"inbound": inbound.pk})
            if isinstance(exc, DatabaseError):
                raise


def _handle(claim: Claim) -> None:
    inbound = claim.inbound
    bot = inbound.channel.bot
    if inbound.reply_id is not None:  # resumed after a crash: the answer exists, send it (once)
        deliver(claim, inbound.reply, status=S.RATE_LIMITED if inbound.refused_by else S.ANSWERED)
        return
    conv = _conversation(claim)
    conv.bot = bot
    with log_context(conversation=conv.pk):
        # Workflows first: "/ticket …" must win over the unknown-command hint, and "yes" to a
        # confirmation prompt is not a question for the model. Refused messages only get the notice.
        if not inbound.refused_by and run_workflows(claim, conv):
            return
        cmd = parse_command(inbound.text)
        if cmd is not None:
            store_user_turn(conv, inbound, source="command")
            text = run_command(cmd, inbound, conv)
            _answer(claim, conv, text=text, source="command", status=S.ANSWERED)
            return

        language = _language(conv, inbound.text)
        if inbound.refused_by:
            store_user_turn(conv, inbound, language=language, source="rate_limited")
            text = text_for(f"rate_limited_{inbound.refused_by}", language)
            _answer(claim, conv, text=text, source="system", status=S.RATE_LIMITED)
            return

        store_user_turn(conv, inbound, language=language, first_attempt=claim.attempt == 1)
        waited = False
        if merge_applies(bot, inbound.text):
            due = inbound.received_at.timestamp() + bot.merge_window_ms / 1000
            wait = due - time.time()
            if wait > 0:
                time.sleep(min(wait, bot.merge_window_ms / 1000))
                waited = True
        turns = None
        if sql.fast():
            # One read: still ours? written again? earlier messages waiting? and the context turns.
            # Earlier messages of the sender claimed by other workers a moment ago store their turn
            # within milliseconds; wait for them (bounded) so their text is in this answer.
            in_flight_since = inbound.received_at - timedelta(milliseconds=bot.merge_window_ms + IN_FLIGHT_GRACE_MS)
            deadline = time.monotonic() + IN_FLIGHT_WAIT_S
            while True:
                snapshot = read_snapshot(
                    inbound, claim.attempt, conv, since=conv.started_at, in_flight_since=in_flight_since
                )
                if not snapshot.in_flight or snapshot.newer is not None or time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
            if snapshot.newer is not None:
                _overtaken(claim, snapshot.newer[1])
                return
            if not snapshot.owned:
                return
            turns = snapshot.turns
            if snapshot.pending and _absorb_pending(inbound, conv, snapshot.pending):
                turns = None  # the merged turns belong in the context: read it again
        else:
            # The same wait as above, for earlier messages claimed by other workers.
            in_flight_since = inbound.received_at - timedelta(milliseconds=bot.merge_window_ms + IN_FLIGHT_GRACE_MS)
            deadline = time.monotonic() + IN_FLIGHT_WAIT_S
            while (
                newer_turn(inbound) is None
                and in_flight_turns(inbound, since=in_flight_since)
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            newer = newer_turn(inbound)
            if newer is not None:
                _overtaken(claim, newer.text)
                return
            if waited and not claim.touch():
                return
            _absorb_pending(inbound, conv)

        answer = generate_answer(claim, conv, language=language, turns=turns)
        if answer.cancelled:
            claim.finish(S.INTERRUPTED)
            return
        # Stored only if the sender has not written again meanwhile (else kept for review, out of
        # the context, and the message is finished as interrupted).
        reply = store_reply(
            claim,
            conv,
            text=answer.text,
            check_newer=True,
            language=language,
            model_config=answer.model_config,
            model_name=answer.model_name,
            provider=answer.provider,
            latency_ms=answer.latency_ms,
            tokens_in=answer.tokens_in,
            tokens_out=answer.tokens_out,
            cost=answer.cost,
            attempts=[a.as_dict() for a in answer.attempts],
            fallback_used=answer.fallback_used,
            cached=answer.cached,
            source=answer.source,
            failed=answer.failed,
        )
        if reply is None or reply.interrupted:
            return
        deliver(claim, reply, status=S.ANSWERED, conv=conv, language=None if conv.language_pinned else language)
        elapsed = (timezone.now() - inbound.received_at).total_seconds()
        metrics.AI_RESPONSE_DURATION.labels(bot.tenant.slug, bot.slug, inbound.channel.platform).observe(elapsed)
        logger.info("message answered", extra={"inbound": inbound.pk, "elapsed_ms": int(elapsed * 1000)})


def _conversation(claim: Claim) -> Conversation:
    """The conversation ``claim.inbound`` belongs to: the one it is linked to (a resumed message)
    while that is active, else its sender's active one unless idle too long, else a new one."""
    inbound = claim.inbound
    if not claim.prefetched:
        conv = inbound.conversation if inbound.conversation_id else get_conversation(inbound)
        if conv.status != Conversation.Status.ACTIVE:
            conv = get_conversation(inbound)
        return conv
    conv = claim.conversation
    if claim.linked and conv is not None and conv.status == Conversation.Status.ACTIVE:
        return conv
    return get_conversation(inbound, active=None if claim.linked else conv)


def _overtaken(claim: Claim, newer_text: str) -> None:
    """The sender wrote again before an answer was made: the newer message is answered with the
    whole context, this turn included (merged), unless the newer one is /stop."""
    claim.finish(S.INTERRUPTED if parse_command(newer_text) is not None else S.MERGED)


def _language(conv: Conversation, text: str) -> str:
    if conv.language_pinned and conv.language:
        return conv.language
    return detect_language(text, default=conv.language or "en")


def _answer(claim: Claim, conv: Conversation, *, text: str, source: str, status: str) -> None:
    """Store and send a reply that needs no model (commands, rate-limit notices)."""
    reply = store_reply(claim, conv, text=text, source=source, language=_language(conv, text))
    if reply is None:
        return
    deliver(claim, reply, status=status)


def _absorb_pending(inbound: InboundMessage, conv: Conversation, pending: list[int] | None = None) -> bool:
    """Fold earlier messages of the same sender that no worker has picked up yet (their task is
    still queued or held for the merge window) into this answer, so that none is left unanswered.
    ``pending``: their ids, when the caller read them already. Returns whether any was folded."""
    rows = sender_rows(inbound).filter(
        pk__lt=inbound.pk, status=S.RECEIVED, interrupts=True, refused_by="", received_at__gte=conv.started_at
    )
    if pending is not None:
        rows = rows.filter(pk__in=pending)
    absorbed = False
    for row in rows:
        if InboundMessage.objects.filter(pk=row.pk, status=S.RECEIVED).update(
            status=S.MERGED, finished_at=timezone.now(), conversation=conv
        ):
            store_user_turn(conv, row, language=conv.language)
            absorbed = True
    return absorbed
