"""Human handoff services: ask for a person, claim, reply, resolve, hand back on silence, draft.

Every write is a conditional UPDATE on the handoff's state, so two agents clicking "claim" at the
same moment get one winner and one ``HandoffTaken`` naming the holder; a resolve racing the idle
sweep ends the handoff once. What the user is told goes out through the conversation's own
channel with the pipeline's sender (``conversations.delivery``: the platform's formatting, the
idempotency key, and delivery's retries for hours), never through a second one.

Views, consumers, tasks and the pipeline gate call these and stay thin. Errors a person can act on
are ``HandoffError`` with an HTTP status; a handoff of a tenant the user cannot handle is "not
found" (404), never "forbidden", so tenants never learn of each other's rows.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings as django_settings
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.bots.models import Bot
from apps.conversations.commands import parse_command
from apps.conversations.models import Conversation, Feedback, InboundMessage, Message
from apps.core.audit import audit_record
from apps.core.language import detect_language
from apps.core.pii import mask_text
from apps.core.tasks import enqueue
from apps.core.ttlcache import TTLCache
from apps.tenants.selectors import HANDOFF_ROLES, can_handle_handoffs, can_manage, tenant_ids_for

from . import live, metrics
from .models import Handoff, HandoffSettings
from .texts import days_text, text_for

logger = logging.getLogger(__name__)
H = Handoff.State

#: ``/human`` and its aliases (the command word, any case).
COMMAND_WORDS = {"human", "agent", "人工", "转人工"}
MAX_REPLY_CHARS = 4000
SUMMARY_CHARS = 300


class HandoffError(Exception):
    """Something an agent can act on; ``status`` is the HTTP status the views answer with."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class HandoffTaken(HandoffError):
    """Another agent holds the conversation (``holder``: their name)."""

    def __init__(self, holder: str) -> None:
        super().__init__(_("%(name)s is already handling this conversation.") % {"name": holder}, status=409)
        self.holder = holder


def agent_name(user: Any) -> str:
    if user is None:
        return ""
    return (user.get_full_name() or user.get_username()).strip()


# --- settings, opening hours, what the user is told ------------------------------------------------
def settings_for(bot: Bot) -> HandoffSettings:
    """The bot's handoff settings, or the defaults (unsaved) when it has none."""
    try:
        return bot.handoff_settings
    except HandoffSettings.DoesNotExist:
        return HandoffSettings(bot=bot)


#: Handoff settings by bot id, for the gate every message passes (a few seconds old is good enough;
#: saving or deleting settings clears it at once in this process).
_gate_settings: TTLCache[int, HandoffSettings | None] = TTLCache(
    lambda: django_settings.PARLEY_CHANNEL_CACHE_SECONDS, max_keys=10_000
)


def gate_settings(bot: Bot) -> HandoffSettings:
    """``settings_for(bot)`` as the pipeline's gate reads it: from a short per-process cache."""
    row = _gate_settings.get(bot.pk, lambda: HandoffSettings.objects.filter(bot_id=bot.pk).first())
    return row if row is not None else HandoffSettings(bot=bot)


def forget_gate_settings(**_: Any) -> None:
    _gate_settings.clear()


post_save.connect(forget_gate_settings, sender=HandoffSettings, dispatch_uid="inbox-forget-gate-settings")
post_delete.connect(forget_gate_settings, sender=HandoffSettings, dispatch_uid="inbox-forget-gate-settings-del")


def _zone(cfg: HandoffSettings) -> ZoneInfo:
    try:
        return ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _as_time(value: Any):
    return datetime.strptime(value[:5], "%H:%M").time() if isinstance(value, str) else value


@dataclass(frozen=True)
class Opening:
    open_now: bool
    next_open: datetime | None  # local time of the next opening (None: open now, or never)


def opening(cfg: HandoffSettings, *, now: datetime | None = None) -> Opening:
    """Whether people are available now by ``cfg``'s opening hours and, if not, when next."""
    local = (now or timezone.now()).astimezone(_zone(cfg))
    opens, closes = _as_time(cfg.opens_at), _as_time(cfg.closes_at)
    days = {int(c) for c in cfg.open_days if c in "1234567"}
    if local.isoweekday() in days and opens <= local.time() < closes:
        return Opening(True, None)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.isoweekday() not in days:
            continue
        start = datetime.combine(day, opens, tzinfo=local.tzinfo)
        if start > local:
            return Opening(False, start)
    return Opening(False, None)


def _opened_at(cfg: HandoffSettings, now: datetime) -> datetime:
    """When today's opening hours began (call while open)."""
    local = now.astimezone(_zone(cfg))
    return datetime.combine(local.date(), _as_time(cfg.opens_at), tzinfo=local.tzinfo)


def requested_text(cfg: HandoffSettings, language: str, *, now: datetime | None = None) -> str:
    """ "A colleague will reply", with the hours, or when they open next if outside them."""
    hours = f"{_as_time(cfg.opens_at):%H:%M}–{_as_time(cfg.closes_at):%H:%M}"
    days = days_text(cfg.open_days, language)
    state = opening(cfg, now=now)
    if state.open_now or state.next_open is None:
        return text_for("requested_open", language, days=days, hours=hours)
    day = days_text(str(state.next_open.isoweekday()), language)
    return text_for("requested_closed", language, days=days, hours=hours, next=f"{day} {state.next_open:%H:%M}")


_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def _normal(text: str) -> str:
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text or "").casefold())


def asks_for_person(text: str, cfg: HandoffSettings) -> str | None:
    """``Handoff.Reason`` when ``text`` asks for a person (``/human`` or one of the bot's phrases),
    else None. Phrases match the whole message, ignoring case, spaces and punctuation."""
    if not cfg.enabled:
        return None
    cmd = parse_command(text)
    if cmd is not None:
        return Handoff.Reason.COMMAND if cmd.raw_name.lower() in COMMAND_WORDS else None
    wanted = _normal(text)
    if wanted and any(wanted == _normal(p) for p in cfg.phrases.splitlines() if p.strip()):
        return Handoff.Reason.PHRASE
    return None


# --- reading -------------------------------------------------------------------------------------
def open_handoff(conversation: Conversation) -> Handoff | None:
    """The waiting or active handoff of ``conversation``, or None (the bot answers)."""
    return Handoff.objects.filter(conversation=conversation, state__in=Handoff.OPEN_STATES).first()


def sender_handoff(conversation: Conversation) -> Handoff | None:
    """The open handoff of ``conversation``'s sender (channel + chat + user). When it belongs to an
    earlier conversation of theirs (closed by the bot's idle timeout while they waited), it moves to
    this one, so a person keeps holding it. One query when nothing is open."""
    sender = [conversation.channel_id, conversation.chat_id, conversation.user_id]
    with connection.cursor() as cursor:
        cursor.execute(_sender_handoff_sql(), [*(state.value for state in Handoff.OPEN_STATES), *sender])
        row = cursor.fetchone()
    if row is None:
        return None
    handoff = Handoff.objects.filter(pk=row[0]).first()
    if handoff is not None and handoff.conversation_id != conversation.pk:
        Handoff.objects.filter(pk=handoff.pk).update(conversation=conversation)
        handoff.conversation = conversation
    return handoff


@cache
def _sender_handoff_sql() -> str:
    # Asked for every message a bot handles: written out once rather than compiled by the ORM each
    # time (that compilation was the largest CPU cost of the handoff gate).
    quote = connection.ops.quote_name
    handoff, conv = quote(Handoff._meta.db_table), quote(Conversation._meta.db_table)
    states = ", ".join(["%s"] * len(Handoff.OPEN_STATES))
    return (
        f"SELECT h.id FROM {handoff} h JOIN {conv} c ON c.id = h.conversation_id "  # noqa: S608 - names from metadata
        f"WHERE h.state IN ({states}) AND c.channel_id = %s AND c.chat_id = %s AND c.user_id = %s "
        "ORDER BY h.requested_at DESC LIMIT 1"
    )


def handoff_for(user: Any, handoff_id: int) -> Handoff:
    """The handoff ``handoff_id`` if ``user`` may handle its tenant. Raises ``HandoffError`` (404)."""
    handoff = (
        Handoff.objects.select_related("conversation__channel", "bot__tenant", "agent", "tenant")
        .filter(pk=handoff_id)
        .first()
    )
    if handoff is None or not can_handle_handoffs(user, handoff.tenant_id):
        raise HandoffError(_("No such conversation."), status=404)
    return handoff


def handoff_tenant_ids(user: Any) -> set[int] | None:
    """Tenants whose inbox ``user`` works in (None: every tenant, for superusers)."""
    return tenant_ids_for(user, roles=HANDOFF_ROLES)


# --- asking for a person -------------------------------------------------------------------------
def _summary(conversation: Conversation, cfg: HandoffSettings) -> str:
    """The user's recent words (not commands or phrases): what the inbox shows until the bot's own
    summary (``handoff_summarize``) replaces it."""
    turns = conversation.messages.filter(role=Message.Role.USER).exclude(source="command").order_by("-created_at")
    texts = [m.text for m in turns[:6] if asks_for_person(m.text, cfg) is None][:3]
    texts.reverse()
    return " / ".join(t.strip() for t in texts if t.strip())[:SUMMARY_CHARS]


def handoff_request(
    *, conversation: Conversation, reason: str, language: str = "", note: str = ""
) -> tuple[Handoff, bool]:
    """Put ``conversation`` in its tenant's waiting queue. Returns ``(handoff, created)``: the open
    handoff it already had (``created=False``), or a new waiting one. The caller tells the user
    (``requested_text``). After commit: the inbox is told live, the team's group is notified and
    the bot is asked for a summary."""
    existing = open_handoff(conversation)
    if existing is not None:
        return existing, False
    bot = conversation.bot
    cfg = settings_for(bot)
    language = language or conversation.language or ""
    handoff = Handoff(
        tenant_id=conversation.tenant_id,
        bot=bot,
        conversation=conversation,
        reason=reason,
        note=note[:2000],
        language=language,
        summary=_summary(conversation, cfg),
    )
    try:
        with transaction.atomic():
            handoff.save(force_insert=True)
    except IntegrityError:  # another worker opened one a moment ago
        existing = open_handoff(conversation)
        if existing is None:
            raise
        return existing, False
    audit_record(
        action="handoff.request",
        tenant=conversation.tenant,
        target=f"conversation:{conversation.pk}",
        handoff=handoff.pk,
        reason=reason,
    )
    metrics.record_event(handoff, "requested")
    live.changed(handoff, "requested")
    from . import tasks

    if cfg.pk and cfg.notify_channel_id and cfg.notify_chat_id:
        enqueue(tasks.notify_team, handoff.pk)
    enqueue(tasks.summarize_handoff, handoff.pk)
    logger.info("handoff requested", extra={"handoff": handoff.pk, "reason": reason})
    return handoff, True


def last_user_inbound(conversation: Conversation) -> InboundMessage | None:
    """The user's newest message in ``conversation``: where replies outside a turn go."""
    return (
        InboundMessage.objects.filter(conversation=conversation)
        .select_related("channel__bot__tenant")
        .order_by("-pk")
        .first()
    )


def conversation_tell(
    conversation: Conversation, text: str, *, source: str, language: str = "", author: Any = None
) -> Message:
    """Store ``text`` as an answer in ``conversation`` and send it (after commit, by the
    ``deliver_message`` task, with retries) to the user's newest message's chat through the
    channel's adapter. Raises ``HandoffError`` (409) when the conversation has no message to
    answer."""
    target = last_user_inbound(conversation)
    if target is None:
        raise HandoffError(_("This conversation has no message to reply to."), status=409)
    message = Message.objects.create(
        conversation=conversation,
        inbound=target,
        role=Message.Role.ASSISTANT,
        text=text,
        language=language,
        source=source,
        author_id=str(author.pk) if author is not None else "",
        author_name=agent_name(author),
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_activity_at=timezone.now())
    from . import tasks

    enqueue(tasks.deliver_message, message.pk)
    return message


def message_deliver(message_id: int) -> str:
    """Send a stored answer once, as the pipeline's replies are sent (``conversations.delivery``:
    the platform's formatting, the idempotency key, the feedback link for rateable answers). When
    the platform does not take it, it is handed over to delivery's retries (growing backoff for
    hours; listed under undelivered replies in the admin). Returns delivered, handed_over or
    skipped (delivered already, or no longer there)."""
    from apps.channels.platforms.base import PlatformError
    from apps.conversations import delivery

    with transaction.atomic():  # one sender at a time: a redelivered task waits, then skips
        message = (
            Message.objects.select_for_update()
            .filter(pk=message_id, role=Message.Role.ASSISTANT, delivered_at__isnull=True, delivery_state="")
            .first()
        )
        if message is None or message.inbound_id is None:
            return "skipped"
        inbound = InboundMessage.objects.select_related("channel__bot__tenant").get(pk=message.inbound_id)
        try:
            sent = delivery.send(inbound.channel, inbound, message)
        except PlatformError as exc:
            delivery.hand_over(message, exc)
            return "handed_over"
        delivery.mark_delivered(message, sent)
        return "delivered"


def request_by_rule(*, message: Message, rating: int) -> Handoff | None:
    """The rule "two thumbs-down in a row": the conversation's two newest rated answers both rated
    down (1–2 stars) put it in the queue, and the user is told. Returns the new handoff or None."""
    if rating > 2:
        return None
    conversation = message.conversation
    if conversation.status != Conversation.Status.ACTIVE or not settings_for(conversation.bot).enabled:
        return None
    latest = list(
        Feedback.objects.filter(message__conversation=conversation)
        .order_by("-message__created_at", "-message_id")
        .values_list("rating", flat=True)[:2]
    )
    if len(latest) < 2 or any(r > 2 for r in latest):
        return None
    language = message.language or conversation.language or detect_language(message.text)
    handoff, created = handoff_request(conversation=conversation, reason=Handoff.Reason.RULE, language=language)
    if created:
        conversation_tell(conversation, text_for("requested_rule", language), source="system", language=language)
        return handoff
    return None


def request_by_model(*, conversation: Conversation, note: str = "") -> Handoff:
    """The model's own decision (the built-in tool of tool calling calls this): queue the
    conversation and tell the user, in their language, within what hours a colleague replies."""
    language = conversation.language or "en"
    handoff, created = handoff_request(
        conversation=conversation, reason=Handoff.Reason.MODEL, language=language, note=note
    )
    if created:
        text = requested_text(settings_for(conversation.bot), language)
        conversation_tell(conversation, text, source="system", language=language)
    return handoff


# --- agents --------------------------------------------------------------------------------------
def handoff_claim(*, handoff_id: int, user: Any, request: Any = None) -> Handoff:
    """``user`` takes the waiting conversation over (the bot already stays silent). Claiming what
    one holds already is a no-op. Raises ``HandoffTaken`` (409, naming the holder) when another
    agent got there first, ``HandoffError`` (409) when it is resolved, (404) when not theirs."""
    handoff = handoff_for(user, handoff_id)
    if handoff.state == H.ACTIVE and handoff.agent_id == user.pk:
        return handoff
    now = timezone.now()
    won = Handoff.objects.filter(pk=handoff.pk, state=H.WAITING).update(
        state=H.ACTIVE, agent=user, claimed_at=now, last_activity_at=now
    )
    if not won:
        handoff.refresh_from_db()
        if handoff.state == H.ACTIVE and handoff.agent_id != user.pk:
            raise HandoffTaken(agent_name(handoff.agent))
        if handoff.state != H.ACTIVE:
            raise HandoffError(_("This conversation has been handed back to the bot."), status=409)
        return handoff
    handoff.state, handoff.agent, handoff.claimed_at = H.ACTIVE, user, now
    audit_record(
        action="handoff.claim",
        actor=user,
        tenant=handoff.tenant,
        target=f"conversation:{handoff.conversation_id}",
        request=request,
        handoff=handoff.pk,
    )
    metrics.record_claim(handoff)
    live.changed(handoff, "claimed")
    return handoff


def _held_by(handoff: Handoff, user: Any) -> None:
    if handoff.state == H.WAITING:
        raise HandoffError(_("Claim the conversation first."), status=409)
    if handoff.state != H.ACTIVE:
        raise HandoffError(_("This conversation has been handed back to the bot."), status=409)
    if handoff.agent_id != user.pk:
        raise HandoffTaken(agent_name(handoff.agent))


def handoff_reply(*, handoff_id: int, user: Any, text: str, request: Any = None) -> Message:
    """Send ``text`` to the user as ``user`` (who holds the conversation), through its channel.
    Returns the stored answer (``source="agent"``; sent after commit). Raises ``HandoffError``."""
    handoff = handoff_for(user, handoff_id)
    _held_by(handoff, user)
    text = (text or "").strip()
    if not text:
        raise HandoffError(_("The reply is empty."))
    if len(text) > MAX_REPLY_CHARS:
        raise HandoffError(_("A reply can be at most %(n)d characters.") % {"n": MAX_REPLY_CHARS})
    conversation = handoff.conversation
    language = conversation.language or detect_language(text)
    message = conversation_tell(conversation, text, source="agent", language=language, author=user)
    now = timezone.now()
    first = Handoff.objects.filter(pk=handoff.pk, first_reply_at__isnull=True).update(first_reply_at=now)
    Handoff.objects.filter(pk=handoff.pk).update(last_activity_at=now)
    if first:
        handoff.first_reply_at = now
        metrics.record_first_reply(handoff)
    audit_record(
        action="handoff.reply",
        actor=user,
        tenant=handoff.tenant,
        target=f"conversation:{conversation.pk}",
        request=request,
        handoff=handoff.pk,
        message=message.pk,
        chars=len(text),
    )
    live.changed(handoff, "replied")
    return message


def _end(handoff: Handoff, *, ended_by: str, states: tuple[str, ...], now: datetime) -> bool:
    done = Handoff.objects.filter(pk=handoff.pk, state__in=states).update(
        state=H.RESOLVED, resolved_at=now, ended_by=ended_by
    )
    if done:
        handoff.state, handoff.resolved_at, handoff.ended_by = H.RESOLVED, now, ended_by
    return bool(done)


def handoff_resolve(*, handoff_id: int, user: Any, request: Any = None) -> Handoff:
    """Hand the conversation back to the bot: the user is told (with the feedback link) and the bot
    answers their next message. The holder may resolve; so may an owner or admin of the tenant,
    and any agent a conversation still waiting (e.g. spam). Raises ``HandoffError``."""
    handoff = handoff_for(user, handoff_id)
    if handoff.state == H.ACTIVE and handoff.agent_id != user.pk and not can_manage(user, handoff.tenant_id):
        raise HandoffTaken(agent_name(handoff.agent))
    if not _end(handoff, ended_by=Handoff.EndedBy.AGENT, states=Handoff.OPEN_STATES, now=timezone.now()):
        raise HandoffError(_("This conversation has been handed back to the bot."), status=409)
    audit_record(
        action="handoff.resolve",
        actor=user,
        tenant=handoff.tenant,
        target=f"conversation:{handoff.conversation_id}",
        request=request,
        handoff=handoff.pk,
    )
    _handed_back(handoff, "resolved")
    return handoff


def _handed_back(handoff: Handoff, key: str) -> None:
    conversation = handoff.conversation
    metrics.record_end(handoff)
    live.changed(handoff, key)
    if conversation.status != Conversation.Status.ACTIVE:
        return  # the user has moved on to a new conversation: nothing to tell
    language = handoff.language or conversation.language or "en"
    # "handoff" answers carry the feedback link (delivery.RATEABLE_SOURCES).
    with contextlib.suppress(HandoffError):
        conversation_tell(conversation, text_for(key, language), source="handoff", language=language)


def handoffs_sweep(*, now: datetime | None = None) -> int:
    """Hand back every open handoff silent (no message either way) for longer than its bot's
    ``idle_timeout_minutes``, telling the user. A conversation still waiting for a person is not
    timed out outside the opening hours, and its silence counts from the opening. Returns how many
    were handed back."""
    now = now or timezone.now()
    count = 0
    candidates = Handoff.objects.filter(state__in=Handoff.OPEN_STATES).select_related(
        "conversation", "tenant", "bot__handoff_settings"
    )
    for handoff in candidates.iterator():
        cfg = settings_for(handoff.bot)
        since = handoff.last_activity_at
        if handoff.state == H.WAITING:
            # Nobody can claim it while the team is away: the user was told when they will reply.
            # The silence counts from the opening, not from the evening before.
            if not opening(cfg, now=now).open_now:
                continue
            since = max(since, _opened_at(cfg, now))
        if since >= now - timedelta(minutes=cfg.idle_timeout_minutes):
            continue
        if not _end(handoff, ended_by=Handoff.EndedBy.TIMEOUT, states=Handoff.OPEN_STATES, now=now):
            continue
        audit_record(
            action="handoff.timeout",
            tenant=handoff.tenant,
            target=f"conversation:{handoff.conversation_id}",
            handoff=handoff.pk,
            agent=handoff.agent_id,
        )
        _handed_back(handoff, "timed_out")
        count += 1
    return count


# --- the pipeline's side: messages while held ------------------------------------------------------
def user_wrote(handoff: Handoff) -> None:
    """The user's message was stored in a held conversation: it keeps the handoff (and the
    conversation) from timing out, and shows up live in the inbox."""
    now = timezone.now()
    Handoff.objects.filter(pk=handoff.pk).update(last_activity_at=now)
    Conversation.objects.filter(pk=handoff.conversation_id).update(last_activity_at=now)
    live.changed(handoff, "message")


# --- the bot's help ------------------------------------------------------------------------------
def _model_available(bot: Bot) -> bool:
    """Whether the bot has a real model to ask (the built-in stand-in writes no useful summary)."""
    return bot.model_id is not None or django_settings.AI_PROVIDER != "builtin"


def handoff_draft(*, handoff_id: int, user: Any) -> str:
    """The bot's proposed answer to the conversation as it stands, for ``user`` to edit. Never
    sent by itself. Raises ``HandoffError`` (502) when the bot cannot make one now."""
    from apps.bots import routing
    from apps.conversations.pipeline.context import build_context
    from apps.conversations.pipeline.storage import storage

    handoff = handoff_for(user, handoff_id)
    conversation = handoff.conversation
    bot = conversation.bot
    language = handoff.language or conversation.language or "en"
    turns = storage().context_turns(conversation, limit=bot.context_max_turns)
    messages, _question = build_context(
        conversation, turns, mask_pii=bot.pii_policy == bot.PiiPolicy.MASK, language=language
    )
    answer = routing.ask(bot=bot, messages=messages, language=language)
    if answer.failed or not answer.text.strip():
        raise HandoffError(_("The bot could not write a draft just now. Please try again."), status=502)
    return answer.text


SUMMARY_PROMPT = {
    "en": "In one short sentence, say what the user needs help with. Answer with that sentence only.",
    "zh": "用一句简短的话概括用户需要什么帮助。只回答这句话。",
}


def handoff_summarize(handoff_id: int) -> str:
    """Ask the bot's model for a one-sentence summary of what the user needs and store it on the
    handoff (the user's own words stay when no model is configured or the call fails)."""
    from apps.bots import routing

    handoff = Handoff.objects.select_related("conversation__bot__tenant").filter(pk=handoff_id).first()
    if handoff is None or not _model_available(handoff.conversation.bot):
        return handoff.summary if handoff is not None else ""
    bot = handoff.conversation.bot
    turns = handoff.conversation.messages.filter(role__in=[Message.Role.USER, Message.Role.ASSISTANT]).exclude(
        source__in=["command", "system", "handoff"]
    )
    lines = [f"{m.role}: {m.text}" for m in turns.order_by("-created_at")[:8]][::-1]
    if not lines:
        return handoff.summary
    if bot.pii_policy == bot.PiiPolicy.MASK:
        lines = [mask_text(line) for line in lines]
    language = "zh" if (handoff.language or "").startswith("zh") else "en"
    messages = [{"role": "system", "content": SUMMARY_PROMPT[language]}, {"role": "user", "content": "\n".join(lines)}]
    answer = routing.ask(bot=bot, messages=messages, language=language)
    if answer.failed or not answer.text.strip():
        return handoff.summary
    summary = answer.text.strip()[:SUMMARY_CHARS]
    Handoff.objects.filter(pk=handoff.pk).update(summary=summary)
    live.changed(handoff, "summary")
    return summary


def team_notify(handoff_id: int) -> None:
    """Tell the team's own IM group of a new waiting conversation (masked summary, no user ids).
    Raises ``PlatformError`` from the send."""
    from apps.channels.platforms.base import OutboundReply, Target
    from apps.channels.platforms.registry import get_adapter

    handoff = (
        Handoff.objects.select_related("bot__handoff_settings", "conversation__channel").filter(pk=handoff_id).first()
    )
    if handoff is None or handoff.state != H.WAITING:
        return
    cfg = settings_for(handoff.bot)
    channel = cfg.notify_channel
    if channel is None or not cfg.notify_chat_id or not channel.enabled:
        return
    adapter = get_adapter(channel.platform)
    if adapter is None:
        return
    text = text_for(
        "notify_team",
        handoff.language or "en",
        bot=handoff.bot.name,
        platform=handoff.conversation.channel.platform,
        summary=mask_text(handoff.summary) or "—",
    )
    adapter.send(
        channel,
        Target(chat_id=cfg.notify_chat_id, user_id="", is_group=True, reply_context={}),
        OutboundReply(markdown=text, idempotency_key=f"parley-handoff-{handoff.pk}"),
    )
