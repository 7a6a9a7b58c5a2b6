"""The pipeline's storage in the portable ORM (SQLite, the embedded default; any database).

Writes that must see one state of the database are one transaction each; SQLite's transactions
here begin IMMEDIATE (config/settings.py), so a transaction holds the write lock from its first
statement and its reads cannot be overtaken by another writer — on PostgreSQL the ownership row
is locked (``SELECT … FOR UPDATE``) for the same effect.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from apps.bots.routing import named_models
from apps.channels.platforms.base import SentRef

from ...models import Conversation, InboundMessage, Message
from ..turn import Turn
from .base import MAX_ATTEMPTS, Snapshot, Storage

S = InboundMessage.Status


class OrmStorage(Storage):
    def _claim(self, inbound_id: int, *, now: datetime, stale: datetime) -> Turn | None:
        claimable = Q(status=S.RECEIVED) | Q(status=S.PROCESSING, claimed_at__lt=stale)
        updated = InboundMessage.objects.filter(claimable, pk=inbound_id, attempts__lt=MAX_ATTEMPTS).update(
            status=S.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
        )
        if not updated:
            return None
        inbound = InboundMessage.objects.select_related(
            "channel", "channel__bot", "channel__bot__tenant", "reply", "conversation"
        ).get(pk=inbound_id)
        bot = inbound.channel.bot
        linked = inbound.conversation is not None
        found = inbound.conversation if linked else self._active(inbound)
        return Turn(
            storage=self,
            inbound=inbound,
            attempt=inbound.attempts,
            found_conversation=found,
            linked=linked,
            models=named_models(bot),
            knowledge_stamp=None,  # the entries are read for every question
        )

    def _insert_unless_active(self, conv: Conversation) -> bool:
        try:
            with transaction.atomic():
                conv.save(force_insert=True)
        except IntegrityError:
            return False
        return True

    def _insert_user_turn(self, msg: Message, inbound: InboundMessage, conv: Conversation) -> None:
        arrived = msg.created_at
        # auto_now_add ignores a given value on create, so the arrival time is set afterwards — in
        # the same transaction, or another worker reading the context between the two statements
        # sees this turn dated "now" and out of order.
        with transaction.atomic():
            msg.save(force_insert=True)
            Message.objects.filter(pk=msg.pk).update(created_at=arrived)
            InboundMessage.objects.filter(pk=inbound.pk).update(conversation=conv)
        msg.created_at = arrived

    def snapshot(self, turn: Turn, *, in_flight_since: datetime) -> Snapshot:
        inbound, conv = turn.inbound, turn.conversation
        sender = InboundMessage.objects.filter(
            channel_id=inbound.channel_id,
            chat_id=inbound.chat_id,
            user_id=inbound.user_id,
            interrupts=True,
            refused_by="",
        )
        newer = sender.filter(pk__gt=inbound.pk).order_by("pk").values_list("pk", "text").first()
        pending = list(
            sender.filter(pk__lt=inbound.pk, status=S.RECEIVED, received_at__gte=conv.started_at)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        stored = Message.objects.filter(inbound_id=OuterRef("pk"), role=Message.Role.USER)
        in_flight = list(
            sender.filter(pk__lt=inbound.pk, status=S.PROCESSING, received_at__gte=in_flight_since)
            .exclude(Exists(stored))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        previous_at = (
            sender.filter(pk__lt=inbound.pk, received_at__gte=conv.started_at)
            .order_by("-pk")
            .values_list("received_at", flat=True)
            .first()
        )
        return Snapshot(
            previous_at=previous_at,
            owned=self.owned(turn),
            newer=tuple(newer) if newer is not None else None,
            pending=pending,
            turns=self.context_turns(conv, limit=turn.bot.context_max_turns),
            in_flight=in_flight,
        )

    def _store_reply(self, turn: Turn, reply: Message, *, check_newer: bool) -> Message | None:
        inbound = turn.inbound
        with transaction.atomic():
            # Ownership first, under the write lock (FOR UPDATE where the database has it; SQLite's
            # IMMEDIATE transaction holds the whole database): a worker whose claim was taken over
            # stores nothing, interrupted or not.
            if not self._mine(turn).select_for_update().exists():
                return None
            newer = (
                check_newer
                and InboundMessage.objects.filter(
                    channel_id=inbound.channel_id,
                    chat_id=inbound.chat_id,
                    user_id=inbound.user_id,
                    pk__gt=inbound.pk,
                    interrupts=True,
                    refused_by="",
                ).exists()
            )
            if newer:
                reply.interrupted = True
                if reply.text:
                    reply.save(force_insert=True)
                self._mine(turn).update(
                    status=S.INTERRUPTED, finished_at=timezone.now(), conversation=turn.conversation
                )
                return reply
            reply.save(force_insert=True)
            InboundMessage.objects.filter(pk=inbound.pk).update(reply=reply, conversation=turn.conversation)
        return reply

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
        if sent is not None:
            self.mark_delivered(reply, sent)
        finished = self.finish(turn, status)
        if conversation is not None:
            Conversation.objects.filter(pk=conversation.pk).update(
                last_activity_at=timezone.now(), **({} if language is None else {"language": language})
            )
        return finished
