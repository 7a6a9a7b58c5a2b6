"""The storage interface of the message pipeline: every read and write a turn needs.

Two implementations: ``PostgresStorage`` (the hot operations as single statements) and
``OrmStorage`` (the portable ORM: SQLite, the embedded default). ``storage()`` picks one; no step
asks which database it runs on. What both must do is pinned down by
``tests/conversations/test_storage_contract.py``, which runs the same cases against each.

Ownership: a claim moves a message received → processing and bumps ``attempts``; that number
(``Turn.attempt``) is the worker's ownership token. Every write that acts for the message —
storing its reply, finishing it, giving it back — happens only while the message is still
processing under that attempt, checked in the same statement or transaction as the write. A
worker whose claim was taken over (presumed dead after ``PARLEY_INBOUND_LEASE_SECONDS`` without a
``touch``) stores and sends nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.channels.platforms.base import SentRef

from ...models import Conversation, InboundMessage, Message
from ..context import NOT_CONTEXT_SOURCES

if TYPE_CHECKING:
    from ..turn import Turn

S = InboundMessage.Status
#: A message is given up (failed) after this many claims.
MAX_ATTEMPTS = 5


def lease_seconds() -> float:
    """Seconds a claim holds without being renewed."""
    return float(settings.PARLEY_INBOUND_LEASE_SECONDS)


@dataclass
class Snapshot:
    """What the database says just before an answer is made (``Storage.snapshot``)."""

    owned: bool  # the worker still holds its claim
    newer: tuple[int, str] | None  # (id, text) of the sender's oldest newer interrupting message
    pending: list[int] = field(default_factory=list)  # earlier messages of the sender not yet picked up
    turns: list[Message] = field(default_factory=list)  # the context turns, oldest first
    # Earlier messages of the sender that another worker has claimed but whose turn is not stored
    # yet: their text belongs in this answer's context, so the merge step waits for it briefly.
    in_flight: list[int] = field(default_factory=list)
    # When the sender's previous message of this conversation arrived (None: this is their first):
    # the merge step holds a message written right after another (a burst).
    previous_at: datetime | None = None


class Storage(ABC):
    """Reads and writes of the message pipeline. Implementations differ in how many statements
    they need, never in what they do."""

    # --- claim ------------------------------------------------------------------------------------

    def claim(self, inbound_id: int) -> Turn | None:
        """Claim the message for this worker and read what its handling needs (the ``Turn``), or
        None when it is finished, held by a live worker, or has been tried ``MAX_ATTEMPTS`` times
        (it is then marked failed)."""
        now = timezone.now()
        stale = now - timedelta(seconds=lease_seconds())
        turn = self._claim(inbound_id, now=now, stale=stale)
        if turn is None:
            claimable = Q(status=S.RECEIVED) | Q(status=S.PROCESSING, claimed_at__lt=stale)
            InboundMessage.objects.filter(claimable, pk=inbound_id, attempts__gte=MAX_ATTEMPTS).update(
                status=S.FAILED, finished_at=now, error="gave up after repeated attempts"
            )
        return turn

    @abstractmethod
    def _claim(self, inbound_id: int, *, now: datetime, stale: datetime) -> Turn | None:
        """Move the message received (or processing with a lease older than ``stale``) → processing
        with ``attempts`` + 1 unless tried ``MAX_ATTEMPTS`` times, and read the turn: the message
        with its channel, bot, tenant and stored reply; the conversation it is linked to, else its
        sender's active one; the models the bot names; the digest of its knowledge entries."""

    # --- ownership (one statement each, the same on every database) -------------------------------

    @staticmethod
    def _mine(turn: Turn):
        return InboundMessage.objects.filter(pk=turn.inbound.pk, status=S.PROCESSING, attempts=turn.attempt)

    def touch(self, turn: Turn) -> bool:
        """Renew the lease. False when another worker has taken the message over."""
        return bool(self._mine(turn).update(claimed_at=timezone.now()))

    def owned(self, turn: Turn) -> bool:
        return self._mine(turn).exists()

    def finish(self, turn: Turn, status: str, *, error: str = "") -> bool:
        """Move the message to a final ``status`` (if still owned). Returns whether it did."""
        return bool(self._mine(turn).update(status=status, finished_at=timezone.now(), error=error[:2000]))

    def release(self, turn: Turn, *, error: str, permanent: bool) -> None:
        """Give the message back (received, for a retry) or fail it (``permanent``), if still owned."""
        self._mine(turn).update(status=S.FAILED if permanent else S.RECEIVED, error=error[:2000])

    # --- the conversation -------------------------------------------------------------------------

    def conversation(self, turn: Turn) -> Conversation:
        """The conversation the message belongs to: the one it is linked to (a resumed message)
        while that is active, else its sender's active one unless idle longer than the bot's idle
        timeout (it is then closed), else a new one. At most one conversation per sender is active
        (a partial unique constraint), so workers handling a user's first messages at once end up
        in the same one. The message is linked to it by ``store_user_turn``."""
        inbound, bot = turn.inbound, turn.bot
        conv = turn.found_conversation
        if turn.linked:
            if conv is not None and conv.status == Conversation.Status.ACTIVE:
                return self._own(conv, bot)
            conv = self._active(inbound)
        idle_since = timezone.now() - timedelta(minutes=bot.idle_timeout_minutes)
        if conv is not None and conv.last_activity_at < idle_since:
            Conversation.objects.filter(pk=conv.pk, last_activity_at__lt=idle_since).update(
                status=Conversation.Status.CLOSED
            )
            conv = self._active(inbound)
        if conv is None:
            conv = Conversation(
                tenant=bot.tenant,
                bot=bot,
                channel=inbound.channel,
                chat_id=inbound.chat_id,
                user_id=_user_key(inbound),
                user_name="" if inbound.is_group else inbound.user_name,
                is_group=inbound.is_group,
            )
            if not self._insert_unless_active(conv):
                conv = self._active(inbound)  # another worker started it a moment ago
                if conv is None:
                    raise Conversation.DoesNotExist("the sender's active conversation vanished")
        return self._own(conv, bot)

    @staticmethod
    def _own(conv: Conversation, bot: Any) -> Conversation:
        conv.bot = bot
        if conv.tenant_id == bot.tenant_id:
            conv.tenant = bot.tenant
        return conv

    @staticmethod
    def _active(inbound: InboundMessage) -> Conversation | None:
        return Conversation.objects.filter(
            channel_id=inbound.channel_id,
            chat_id=inbound.chat_id,
            user_id=_user_key(inbound),
            status=Conversation.Status.ACTIVE,
        ).first()

    @abstractmethod
    def _insert_unless_active(self, conv: Conversation) -> bool:
        """INSERT ``conv`` unless its sender has an active conversation already (False then)."""

    def close_conversation(self, conv: Conversation) -> None:
        Conversation.objects.filter(pk=conv.pk).update(status=Conversation.Status.CLOSED)

    def set_language(self, conv: Conversation, *, language: str | None = None, pinned: bool) -> None:
        """Pin the conversation's answer language (``/lang``), or let it follow the user again."""
        fields: dict[str, Any] = {"language_pinned": pinned}
        if language is not None:
            fields["language"] = language
        Conversation.objects.filter(pk=conv.pk).update(**fields)

    # --- turns ------------------------------------------------------------------------------------

    def store_user_turn(self, turn: Turn, *, source: str = "", language: str | None = None) -> Message:
        """The user's turn for the message (created once; in ``language``, else ``turn.language``),
        dated when the message arrived so that turns handled out of order still read in the order
        they were written; links the message to ``turn.conversation``."""
        if turn.user_turn is None:
            turn.user_turn = self._user_turn(
                turn.conversation,
                turn.inbound,
                language=(turn.text_language or turn.language) if language is None else language,
                source=source,
                new=turn.attempt == 1,
            )
        return turn.user_turn

    def _user_turn(
        self, conv: Conversation, inbound: InboundMessage, *, language: str, source: str, new: bool
    ) -> Message:
        """``new``: no turn can exist for ``inbound`` yet (its first claim), so none is looked for."""
        if not new:
            existing = Message.objects.filter(inbound=inbound, role=Message.Role.USER).first()
            if existing is not None:
                if inbound.conversation_id != conv.pk:
                    InboundMessage.objects.filter(pk=inbound.pk).update(conversation=conv)
                    inbound.conversation = conv
                return existing
        msg = Message(
            conversation=conv,
            inbound=inbound,
            role=Message.Role.USER,
            text=inbound.text,
            author_id=inbound.user_id,
            author_name=inbound.user_name,
            language=language,
            source=source,
            created_at=inbound.received_at,
        )
        self._insert_user_turn(msg, inbound, conv)
        inbound.conversation = conv
        return msg

    @abstractmethod
    def _insert_user_turn(self, msg: Message, inbound: InboundMessage, conv: Conversation) -> None:
        """INSERT ``msg`` dated ``msg.created_at`` and link ``inbound`` to ``conv``, atomically."""

    @abstractmethod
    def snapshot(self, turn: Turn, *, in_flight_since: datetime) -> Snapshot:
        """Whether this worker still owns the message, its sender's newer interrupting message if
        any, the sender's earlier messages still waiting to be picked up since the conversation
        started (to be merged into this answer), those claimed by another worker since
        ``in_flight_since`` whose turn is not stored yet, and the context turns."""

    def merge_pending(self, turn: Turn, pending: list[int]) -> bool:
        """Fold the sender's earlier messages ``pending`` that no worker has picked up yet (their
        task is still queued or held for the merge window) into this answer: each is finished as
        merged and its text stored as a user turn. Returns whether any was folded."""
        conv, inbound = turn.conversation, turn.inbound
        rows = InboundMessage.objects.filter(
            pk__in=pending,
            channel_id=inbound.channel_id,
            chat_id=inbound.chat_id,
            user_id=inbound.user_id,
            pk__lt=inbound.pk,
            status=S.RECEIVED,
            interrupts=True,
            refused_by="",
            received_at__gte=conv.started_at,
        )
        merged = False
        for row in rows:
            if InboundMessage.objects.filter(pk=row.pk, status=S.RECEIVED).update(
                status=S.MERGED, finished_at=timezone.now(), conversation=conv
            ):
                self._user_turn(conv, row, language=conv.language, source="", new=row.attempts == 0)
                merged = True
        return merged

    def context_turns(self, conv: Conversation, *, limit: int) -> list[Message]:
        """The newest ``limit`` turns that belong in the model context, oldest first."""
        qs = (
            Message.objects.filter(
                conversation_id=conv.pk, role__in=[Message.Role.USER, Message.Role.ASSISTANT], interrupted=False
            )
            .exclude(source__in=NOT_CONTEXT_SOURCES)
            .exclude(role=Message.Role.ASSISTANT, failed=True)
            .order_by("-created_at", "-id")
        )
        turns = list(qs[:limit])
        turns.reverse()
        return turns

    # --- replies ----------------------------------------------------------------------------------

    def store_reply(self, turn: Turn, *, text: str, check_newer: bool = False, **fields: Any) -> Message | None:
        """Create the assistant ``Message`` answering the message and link it, or return None when
        this worker no longer owns the message (another worker took it over): then nothing is
        stored.

        ``check_newer``: first make sure the sender has not written again (an ordinary message or
        ``/stop``) — the database's answer, at the moment of storing. If they have, the answer is
        kept for review out of the context (``interrupted``; not stored when it has no text), the
        message is finished as interrupted, and the returned ``Message`` has ``interrupted=True``.
        """
        conv, inbound = turn.conversation, turn.inbound
        reply = Message(
            conversation=conv,
            inbound=inbound,
            role=Message.Role.ASSISTANT,
            text=text,
            created_at=timezone.now(),
            **fields,
        )
        stored = self._store_reply(turn, reply, check_newer=check_newer)
        if stored is None:
            return None
        inbound.conversation = conv
        if not reply.interrupted:
            inbound.reply = reply
        return reply

    @abstractmethod
    def _store_reply(self, turn: Turn, reply: Message, *, check_newer: bool) -> Message | None:
        """All or nothing, and only while the worker owns the message: the newer-message check,
        the insert (``reply.pk`` set; ``reply.interrupted`` set when a newer message was found) and
        the link (``reply`` and ``conversation`` of the message; or the message finished as
        interrupted). None when not owned."""

    def store_note(self, turn: Turn, *, text: str, source: str) -> Message:
        """An assistant turn sent before the message's own answer (not its reply)."""
        return Message.objects.create(
            conversation=turn.conversation, inbound=turn.inbound, role=Message.Role.ASSISTANT, text=text, source=source
        )

    def mark_delivered(self, reply: Message, sent: SentRef) -> None:
        now = timezone.now()
        Message.objects.filter(pk=reply.pk).update(delivered_at=now, platform_message_id=sent.platform_message_id[:200])
        reply.delivered_at = now

    @abstractmethod
    def record_delivery(
        self,
        turn: Turn,
        reply: Message,
        sent: SentRef | None,
        *,
        status: str,
        conversation: Conversation | None = None,
        language: str | None = None,
    ) -> bool:
        """Record that ``reply`` was sent now (``sent``; None: it was delivered before), move the
        message to its final ``status`` (if still owned) and, with ``conversation``, mark it
        active now (and set its ``language`` unless that is None). Returns whether the message
        was finished."""


def _user_key(inbound: InboundMessage) -> str:
    """Group chats are one conversation per chat; elsewhere one per user."""
    return "" if inbound.is_group else inbound.user_id
