"""Reads for the agents' inbox and the dashboard: the queue, one conversation's transcript, canned
replies, and the handoff times per agent and per bot. Every read is limited to the tenants the
person works in (``services.handoff_tenant_ids``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.conversations.models import Message

from .models import CannedReply, Handoff
from .services import agent_name, handoff_tenant_ids

QUEUE_LIMIT = 200
TRANSCRIPT_LIMIT = 200
FIGURES_DAYS = 30
FIGURES_LIMIT = 5000


def _scoped(qs: QuerySet, ids: set[int] | None) -> QuerySet:
    return qs if ids is None else qs.filter(tenant_id__in=ids)


def queue_for(user: Any, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Waiting and active conversations of ``user``'s tenants, newest first."""
    now = now or timezone.now()
    rows = (
        _scoped(Handoff.objects.filter(state__in=Handoff.OPEN_STATES), handoff_tenant_ids(user))
        .select_related("conversation__channel", "bot", "agent", "tenant")
        .order_by("-requested_at")[:QUEUE_LIMIT]
    )
    return [handoff_row(h, user=user, now=now) for h in rows]


def handoff_row(h: Handoff, *, user: Any, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    conv = h.conversation
    end = h.claimed_at or h.resolved_at or now
    return {
        "id": h.pk,
        "state": h.state,
        "state_label": str(h.get_state_display()),
        "reason": str(h.get_reason_display()),
        "bot": h.bot.name,
        "platform": conv.channel.platform,
        "language": h.language or conv.language or "",
        "user_name": conv.user_name or conv.user_id[-6:],
        "summary": h.summary,
        "requested_at": h.requested_at.isoformat(),
        "waiting_seconds": int(max(0, (end - h.requested_at).total_seconds())),
        "agent": agent_name(h.agent),
        "mine": h.agent_id == getattr(user, "pk", None),
    }


def transcript(h: Handoff) -> list[dict[str, Any]]:
    """The conversation's turns, oldest first (the newest ``TRANSCRIPT_LIMIT``)."""
    rows = list(
        Message.objects.filter(conversation_id=h.conversation_id, interrupted=False)
        .order_by("-created_at", "-id")
        .only("id", "role", "text", "source", "author_name", "created_at", "delivered_at")[:TRANSCRIPT_LIMIT]
    )
    rows.reverse()
    return [
        {
            "id": m.pk,
            "role": m.role,
            "text": m.text,
            "by": "agent" if m.source == "agent" else ("user" if m.role == Message.Role.USER else "bot"),
            "author": m.author_name,
            "at": m.created_at.isoformat(),
            "delivered": m.role == Message.Role.USER or m.delivered_at is not None,
        }
        for m in rows
    ]


def canned_replies(h: Handoff) -> list[dict[str, Any]]:
    qs = CannedReply.objects.filter(tenant_id=h.tenant_id).filter(Q(bot__isnull=True) | Q(bot_id=h.bot_id))
    return [{"id": c.pk, "title": c.title, "text": c.text} for c in qs[:100]]


def _avg(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def duration_text(seconds: float | None) -> str:
    """ "45 s", "12 min", "2 h 5 min" (in the admin's language); "—" when unknown."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return _("%(n)d s") % {"n": seconds}
    if seconds < 3600:
        return _("%(n)d min") % {"n": seconds // 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


def handoff_figures(*, tenant_ids: set[int] | None, now: datetime | None = None) -> dict[str, Any]:
    """Handoff times over the last ``FIGURES_DAYS`` days, per agent and per bot: how many, and the
    average waiting time (asked → claimed), first human reply time (asked → first reply) and
    resolution time (asked → handed back), in seconds; plus how many wait right now."""
    now = now or timezone.now()
    since = now - timedelta(days=FIGURES_DAYS)
    rows = list(
        _scoped(Handoff.objects.filter(requested_at__gte=since), tenant_ids)
        .select_related("agent", "bot")
        .order_by("-requested_at")[:FIGURES_LIMIT]
    )
    groups: dict[str, Any] = {
        "agents": defaultdict(lambda: defaultdict(list)),
        "bots": defaultdict(lambda: defaultdict(list)),
    }
    for h in rows:
        keys = [("bots", h.bot.name)]
        if h.agent_id:
            keys.append(("agents", agent_name(h.agent)))
        for kind, key in keys:
            bucket = groups[kind][key]
            bucket["count"].append(1)
            if h.claimed_at:
                bucket["wait"].append((h.claimed_at - h.requested_at).total_seconds())
            if h.first_reply_at:
                bucket["first_reply"].append((h.first_reply_at - h.requested_at).total_seconds())
            if h.resolved_at:
                bucket["resolution"].append((h.resolved_at - h.requested_at).total_seconds())
    out: dict[str, Any] = {
        "days": FIGURES_DAYS,
        "waiting": _scoped(Handoff.objects.filter(state=Handoff.State.WAITING), tenant_ids).count(),
        "total": len(rows),
    }
    for kind, named in groups.items():
        out[kind] = [
            {
                "name": name,
                "count": len(b["count"]),
                "wait": duration_text(_avg(b["wait"])),
                "first_reply": duration_text(_avg(b["first_reply"])),
                "resolution": duration_text(_avg(b["resolution"])),
            }
            for name, b in sorted(named.items())
        ]
    return out
