"""Review selectors (reads): conversation filters, the transcript, exports and the dashboard figures.

Everything that shows conversation text to staff goes through ``masked`` here, so the review
screens and exports mask personal data the same way unless the caller was allowed to reveal it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
)
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.cache import soft_get, soft_set
from apps.core.pii import mask_text
from apps.tenants.models import Tenant

from .feedback_links import feedback_path
from .models import Conversation, Feedback, InboundMessage, Message

# --- masking ----------------------------------------------------------------------------------


def masked(text: str, *, reveal: bool) -> str:
    """``text`` as a review screen may show it: PII masked unless the viewer revealed it."""
    return text if reveal else mask_text(text or "")


def masked_name(name: str, *, reveal: bool) -> str:
    """A person's display name: first character only unless revealed ("Li Lei" → "L***")."""
    if reveal or not name:
        return name
    return name[0] + "***"


# --- filters ----------------------------------------------------------------------------------
RATING_CHOICES = (
    ("5", "★★★★★ 5"),
    ("4", "★★★★ 4"),
    ("3", "★★★ 3"),
    ("2", "★★ 2"),
    ("1", "★ 1"),
    ("low", _("Low (1–2)")),
    ("rated", _("Any rating")),
    ("unrated", _("No rating")),
)


def _answers(**lookups: Any) -> Exists:
    return Exists(Message.objects.filter(conversation=OuterRef("pk"), role=Message.Role.ASSISTANT, **lookups))


def filter_by_rating(qs: QuerySet, value: str | None) -> QuerySet:
    """Conversations with an answer rated ``value`` ("1"–"5", "low" = 1–2, "rated"); "unrated":
    conversations none of whose answers got a rating. Unknown values leave ``qs`` as it is."""
    if value in {"1", "2", "3", "4", "5"}:
        return qs.filter(_answers(feedback__rating=int(value)))
    if value == "low":
        return qs.filter(_answers(feedback__rating__lte=2))
    if value == "rated":
        return qs.filter(_answers(feedback__isnull=False))
    if value == "unrated":
        return qs.exclude(_answers(feedback__isnull=False))
    return qs


def filter_by_answer_flag(qs: QuerySet, flag: str, value: str | None) -> QuerySet:
    """Conversations with ("1") or without ("0") an answer where ``flag`` (``fallback_used``,
    ``failed``, ``cached``) is set."""
    if flag not in {"fallback_used", "failed", "cached"}:
        raise ValueError(f"unknown answer flag {flag!r}")
    if value == "1":
        return qs.filter(_answers(**{flag: True}))
    if value == "0":
        return qs.exclude(_answers(**{flag: True}))
    return qs


def filter_by_dates(qs: QuerySet, date_from: date | None, date_to: date | None) -> QuerySet:
    """Conversations active within [date_from, date_to] (whole days, in the current time zone):
    started on or before the end and active on or after the start."""
    tz = timezone.get_current_timezone()
    if date_from is not None:
        start = datetime.combine(date_from, datetime.min.time(), tzinfo=tz)
        qs = qs.filter(last_activity_at__gte=start)
    if date_to is not None:
        end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        qs = qs.filter(started_at__lt=end)
    return qs


def parse_day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query value, or None when empty or not a date."""
    try:
        return date.fromisoformat((value or "").strip()) if value else None
    except ValueError:
        return None


# --- transcript -------------------------------------------------------------------------------
@dataclass
class Turn:
    """One message of a transcript as a review screen shows it (text already masked or revealed)."""

    id: int
    role: str
    text: str
    created_at: datetime
    author: str = ""
    language: str = ""
    # answers
    model_name: str = ""
    provider: str = ""
    source: str = ""
    latency_ms: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal("0")
    cached: bool = False
    fallback_used: bool = False
    failed: bool = False
    interrupted: bool = False
    attempts: list[dict] = field(default_factory=list)
    rating: int | None = None
    rating_source: str = ""
    comment: str = ""
    flagged: bool = False
    correction: str = ""
    sources: list = field(default_factory=list)  # knowledge-base passages the answer was given
    tools: list = field(default_factory=list)  # the tool calls the model made for the answer, round by round
    rating_url: str = ""  # the end user's rating page of this answer (what the link in chat opens)

    @property
    def is_answer(self) -> bool:
        return self.role == Message.Role.ASSISTANT

    @property
    def stars(self) -> str:
        return "★" * (self.rating or 0) + "☆" * (5 - (self.rating or 0)) if self.rating else ""


def _feedback_of(message: Message) -> Feedback | None:
    try:
        return message.feedback
    except Feedback.DoesNotExist:
        return None


def turn_of(message: Message, *, reveal: bool, tenant_id: int | None = None) -> Turn:
    fb = _feedback_of(message) if message.role == Message.Role.ASSISTANT else None
    rateable = tenant_id is not None and message.role == Message.Role.ASSISTANT and not message.failed
    attempts = [
        {
            "model": str(a.get("model", "")),
            "provider": str(a.get("provider", "")),
            "outcome": str(a.get("outcome", "")),
            "latency_ms": a.get("latency_ms"),
            "error": masked(str(a.get("error", "")), reveal=reveal),
        }
        for a in (message.attempts or [])
        if isinstance(a, dict)
    ]
    return Turn(
        id=message.pk,
        role=message.role,
        text=masked(message.text, reveal=reveal),
        created_at=message.created_at,
        author=masked_name(message.author_name, reveal=reveal),
        language=message.language,
        model_name=message.model_name,
        provider=message.provider,
        source=message.source,
        latency_ms=message.latency_ms,
        tokens_in=message.tokens_in,
        tokens_out=message.tokens_out,
        cost=message.cost,
        cached=message.cached,
        fallback_used=message.fallback_used,
        failed=message.failed,
        interrupted=message.interrupted,
        attempts=attempts,
        rating=fb.rating if fb else None,
        rating_source=fb.source if fb else "",
        comment=masked(fb.comment, reveal=reveal) if fb else "",
        flagged=message.flagged,
        correction=masked(message.correction, reveal=reveal),
        sources=[
            {
                "n": src.get("n"),
                "title": str(src.get("title", "")),
                "section": str(src.get("section", "")),
                "page": src.get("page"),
                "relevance": src.get("relevance"),
                "score": src.get("score"),
                "bm25": src.get("bm25"),
                "similarity": src.get("similarity"),
                "excerpt": str(src.get("excerpt", "")),
            }
            for src in (message.knowledge_sources or [])
            if isinstance(src, dict)
        ],
        tools=[
            {
                "round": c.get("round"),
                "tool": str(c.get("label") or c.get("tool", "")),
                "arguments": str(c.get("arguments", "")),  # stored PII-masked
                "result": str(c.get("result", "")),
                "outcome": str(c.get("outcome", "")),
                "latency_ms": c.get("latency_ms"),
                "confirmed": bool(c.get("confirmed_by")),
            }
            for c in (message.tool_calls or [])
            if isinstance(c, dict)
        ],
        rating_url=feedback_path(message.pk, tenant_id) if rateable else "",
    )


def transcript(conversation: Conversation, *, reveal: bool) -> list[Turn]:
    """The conversation's messages in order, with each answer's figures and rating."""
    messages = conversation.messages.select_related("feedback").order_by("created_at", "id")
    return [turn_of(m, reveal=reveal, tenant_id=conversation.tenant_id) for m in messages]


# --- export -----------------------------------------------------------------------------------
CSV_COLUMNS = (
    "conversation_id",
    "tenant",
    "bot",
    "platform",
    "chat_id",
    "user_id",
    "user_name",
    "conversation_language",
    "message_id",
    "created_at",
    "role",
    "author_name",
    "text",
    "language",
    "source",
    "model_name",
    "latency_ms",
    "tokens_in",
    "tokens_out",
    "cost",
    "cached",
    "fallback_used",
    "failed",
    "flagged",
    "correction",
    "rating",
    "rating_comment",
)
EXPORT_CHUNK = 200


def _export_conversations(conversations: QuerySet) -> Iterator[Conversation]:
    messages = Message.objects.select_related("feedback").order_by("created_at", "id")
    qs = conversations.select_related("tenant", "bot", "channel").prefetch_related(Prefetch("messages", messages))
    # iterator(chunk_size) keeps memory flat on large exports and still prefetches per chunk.
    return qs.iterator(chunk_size=EXPORT_CHUNK)


def _message_record(m: Message, *, reveal: bool) -> dict[str, Any]:
    fb = _feedback_of(m) if m.role == Message.Role.ASSISTANT else None
    return {
        "message_id": m.pk,
        "created_at": m.created_at.isoformat(),
        "role": m.role,
        "author_name": masked_name(m.author_name, reveal=reveal),
        "text": masked(m.text, reveal=reveal),
        "language": m.language,
        "source": m.source,
        "model_name": m.model_name,
        "latency_ms": m.latency_ms,
        "tokens_in": m.tokens_in,
        "tokens_out": m.tokens_out,
        "cost": str(m.cost),
        "cached": m.cached,
        "fallback_used": m.fallback_used,
        "failed": m.failed,
        "flagged": m.flagged,
        "correction": masked(m.correction, reveal=reveal),
        "rating": fb.rating if fb else None,
        "rating_comment": masked(fb.comment, reveal=reveal) if fb else "",
    }


def _conversation_record(c: Conversation, *, reveal: bool) -> dict[str, Any]:
    return {
        "conversation_id": c.pk,
        "tenant": c.tenant.slug,
        "bot": c.bot.slug,
        "platform": c.channel.platform,
        "chat_id": c.chat_id,
        "user_id": masked(c.user_id, reveal=reveal),
        "user_name": masked_name(c.user_name, reveal=reveal),
        "conversation_language": c.language,
        "started_at": c.started_at.isoformat(),
        "flagged": c.flagged,
    }


def export_jsonl(conversations: QuerySet, *, reveal: bool) -> Iterator[str]:
    """JSON Lines, one conversation per line with its messages; yields the lines ("…\\n")."""
    for c in _export_conversations(conversations):
        record = _conversation_record(c, reveal=reveal)
        record["messages"] = [_message_record(m, reveal=reveal) for m in c.messages.all()]
        yield json.dumps(record, ensure_ascii=False) + "\n"


def export_csv(conversations: QuerySet, *, reveal: bool) -> Iterator[str]:
    """CSV, one row per message with its conversation's columns (``CSV_COLUMNS``); yields chunks
    of text starting with the header row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for c in _export_conversations(conversations):
        head = _conversation_record(c, reveal=reveal)
        for m in c.messages.all():
            writer.writerow(_csv_safe({**head, **_message_record(m, reveal=reveal)}))
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue()


def _csv_safe(row: dict[str, Any]) -> dict[str, Any]:
    # Text written by end users must not run as a formula when the file is opened in a spreadsheet.
    return {k: ("'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v) for k, v in row.items()}


# --- dashboard --------------------------------------------------------------------------------
class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=repr(float(fraction)), output_field=DurationField(), **extra)


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolated percentile (same definition as PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * fraction
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    span: timedelta
    bucket: str  # Trunc kind
    buckets: int


WINDOWS = (
    Window("24h", _("Last 24 hours"), timedelta(hours=24), "hour", 24),
    Window("7d", _("Last 7 days"), timedelta(days=7), "day", 7),
)
#: Answers that are not replies to a question (commands, system notices) don't count in the rates.
NON_ANSWER_SOURCES = ("command", "system")
MODEL_SOURCES = ("model", "failure", "builtin")
DASHBOARD_TENANTS = 6
DASHBOARD_CACHE_SECONDS = 60


def _bucket_starts(window: Window, now: datetime) -> list[datetime]:
    tz = timezone.get_current_timezone()
    local = now.astimezone(tz)
    if window.bucket == "hour":
        last = local.replace(minute=0, second=0, microsecond=0)
        step = timedelta(hours=1)
    else:
        last = local.replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(days=1)
    return [last - step * i for i in range(window.buckets - 1, -1, -1)]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _response_times(window: Window, start: datetime, tenant_ids: list[int]) -> tuple[dict, dict]:
    """({tenant: (p50_ms, p99_ms)}, {(tenant, bucket): (p50_ms, p99_ms)}) for answered messages,
    measured from receipt to the end of delivery."""
    answered = InboundMessage.objects.filter(
        received_at__gte=start,
        status=InboundMessage.Status.ANSWERED,
        finished_at__isnull=False,
        channel__bot__tenant_id__in=tenant_ids,
    ).annotate(
        tenant_id=F("channel__bot__tenant_id"),
        elapsed=ExpressionWrapper(F("finished_at") - F("received_at"), output_field=DurationField()),
        bucket=Trunc("received_at", window.bucket, tzinfo=timezone.get_current_timezone()),
    )

    def ms(value: Any) -> float | None:
        if value is None:
            return None
        return value.total_seconds() * 1000 if isinstance(value, timedelta) else float(value) / 1000

    totals: dict[int, tuple] = {}
    per_bucket: dict[tuple, tuple] = {}
    if connection.vendor == "postgresql":
        p = {"p50": PercentileCont("elapsed", 0.5), "p99": PercentileCont("elapsed", 0.99)}
        for row in answered.values("tenant_id").annotate(**p).order_by():
            totals[row["tenant_id"]] = (ms(row["p50"]), ms(row["p99"]))
        for row in answered.values("tenant_id", "bucket").annotate(**p).order_by():
            per_bucket[(row["tenant_id"], row["bucket"])] = (ms(row["p50"]), ms(row["p99"]))
        return totals, per_bucket
    # Other databases (the embedded SQLite) lack percentile_cont: compute from the rows, which are
    # few in a single-process installation.
    samples: dict[Any, list[float]] = defaultdict(list)
    for tenant_id, bucket, received, finished in answered.values_list(
        "tenant_id", "bucket", "received_at", "finished_at"
    ):
        value = (finished - received).total_seconds() * 1000
        samples[tenant_id].append(value)
        samples[(tenant_id, bucket)].append(value)
    for key, values in samples.items():
        pair = (percentile(values, 0.5), percentile(values, 0.99))
        if isinstance(key, tuple):
            per_bucket[key] = pair
        else:
            totals[key] = pair
    return totals, per_bucket


def _window_figures(window: Window, now: datetime, tenant_ids: list[int]) -> dict[int, dict]:
    start = now - window.span
    tz = timezone.get_current_timezone()
    starts = _bucket_starts(window, now)
    index = {b: i for i, b in enumerate(starts)}
    figures: dict[int, dict] = {
        t: {
            "volume": 0,
            "volume_series": [0] * window.buckets,
            "p50_series": [None] * window.buckets,
            "p99_series": [None] * window.buckets,
            "p50_ms": None,
            "p99_ms": None,
            "answers": 0,
            "model_answers": 0,
            "success_rate": None,
            "fallback_rate": None,
            "cache_hit_rate": None,
            "avg_rating": None,
            "ratings": 0,
        }
        for t in tenant_ids
    }
    volume = (
        InboundMessage.objects.filter(received_at__gte=start, channel__bot__tenant_id__in=tenant_ids)
        .annotate(tenant_id=F("channel__bot__tenant_id"), bucket=Trunc("received_at", window.bucket, tzinfo=tz))
        .values("tenant_id", "bucket")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in volume:
        f = figures[row["tenant_id"]]
        f["volume"] += row["n"]
        i = index.get(row["bucket"])
        if i is not None:
            f["volume_series"][i] += row["n"]

    totals, per_bucket = _response_times(window, start, tenant_ids)
    for tenant_id, (p50, p99) in totals.items():
        figures[tenant_id]["p50_ms"], figures[tenant_id]["p99_ms"] = p50, p99
    for (tenant_id, bucket), (p50, p99) in per_bucket.items():
        i = index.get(bucket)
        if i is not None:
            figures[tenant_id]["p50_series"][i] = p50
            figures[tenant_id]["p99_series"][i] = p99

    uses_model = Q(source__in=MODEL_SOURCES) | Q(failed=True)
    answers = (
        Message.objects.filter(
            role=Message.Role.ASSISTANT, created_at__gte=start, conversation__tenant_id__in=tenant_ids
        )
        .exclude(source__in=NON_ANSWER_SOURCES)
        .values("conversation__tenant_id")
        .annotate(
            answers=Count("id"),
            model_answers=Count("id", filter=uses_model),
            model_ok=Count("id", filter=uses_model & Q(failed=False)),
            fallbacks=Count("id", filter=uses_model & Q(fallback_used=True)),
            cached=Count("id", filter=Q(cached=True)),
        )
        .order_by()
    )
    for row in answers:
        f = figures[row["conversation__tenant_id"]]
        f["answers"] = row["answers"]
        f["model_answers"] = row["model_answers"]
        f["success_rate"] = _rate(row["model_ok"], row["model_answers"])
        f["fallback_rate"] = _rate(row["fallbacks"], row["model_answers"])
        f["cache_hit_rate"] = _rate(row["cached"], row["answers"])

    ratings = (
        Feedback.objects.filter(updated_at__gte=start, message__conversation__tenant_id__in=tenant_ids)
        .values("message__conversation__tenant_id")
        .annotate(avg=Avg("rating"), n=Count("id"))
        .order_by()
    )
    for row in ratings:
        f = figures[row["message__conversation__tenant_id"]]
        f["avg_rating"], f["ratings"] = float(row["avg"]), row["n"]
    for f in figures.values():
        f["bucket_starts"] = starts
    return figures


def dashboard_figures(*, tenant_ids: Iterable[int] | None, now: datetime | None = None) -> dict[str, Any]:
    """Figures for the admin index, per tenant and window (``WINDOWS``): message volume (inbound
    messages), response time p50/p99 in ms (receipt → delivered), model success rate (answers that
    needed a model and got one), fallback rate, cache hit rate (answers from the answer cache or a
    knowledge entry), average rating (ratings given in the window), each with a time series.

    ``tenant_ids`` None means every tenant (superusers); then the busiest ``DASHBOARD_TENANTS`` of
    the last 7 days are shown. Returns ``{"tenants": [{"tenant", "windows": {key: figures}}],
    "windows": WINDOWS, "hidden": n, "generated_at": now}``. Cached for a minute per tenant set.
    """
    now = now or timezone.now()
    scope = "all" if tenant_ids is None else ",".join(str(i) for i in sorted(tenant_ids))
    key = "parley:review:dashboard:" + hashlib.sha256(scope.encode()).hexdigest()[:24]
    cached = soft_get(key)
    if cached is not None:
        return cached
    tenants = Tenant.objects.filter(is_active=True)
    if tenant_ids is not None:
        tenants = tenants.filter(pk__in=list(tenant_ids))
    hidden = 0
    if tenant_ids is None:
        ranked = tenants.annotate(
            n=Count(
                "bots__channels__inbound", filter=Q(bots__channels__inbound__received_at__gte=now - WINDOWS[1].span)
            )
        ).order_by("-n", "slug")
        total = tenants.count()
        tenants = ranked[:DASHBOARD_TENANTS]
        hidden = max(0, total - DASHBOARD_TENANTS)
    tenant_list = list(tenants)
    ids = [t.pk for t in tenant_list]
    per_window = {w.key: _window_figures(w, now, ids) for w in WINDOWS} if ids else {}
    result = {
        "tenants": [{"tenant": t, "windows": {w.key: per_window[w.key][t.pk] for w in WINDOWS}} for t in tenant_list],
        "windows": WINDOWS,
        "hidden": hidden,
        "generated_at": now,
    }
    soft_set(key, result, DASHBOARD_CACHE_SECONDS)
    return result


# --- a chat's history, as a channel shows it to the person chatting (the web chat's history frame) ---


@lru_cache(maxsize=4)
def _chat_probe_sql(vendor: str) -> str:
    q = connection.ops.quote_name

    def rows_of(model: Any, *, pending: bool = False) -> str:
        column = {name: q(model._meta.get_field(name).column) for name in ("channel", "chat_id", "user_id", "status")}
        where = f"{column['channel']} = %s AND {column['chat_id']} = %s AND {column['user_id']} = %s"
        if pending:
            where += f" AND {column['status']} IN (%s, %s)"
        return f"SELECT 1 FROM {q(model._meta.db_table)} WHERE {where}"  # noqa: S608 - names from the models

    return f"SELECT 1 WHERE EXISTS ({rows_of(Conversation)}) OR EXISTS ({rows_of(InboundMessage, pending=True)})"


def _chat_has_history(*, channel: Any, chat_id: str, user_id: str) -> bool:
    """Whether the person has a conversation in this chat or a message waiting for the pipeline:
    without either there is no history. One small query, written out in SQL because building it
    with the ORM costs several times the CPU of running it, and most of a burst of web-chat
    handshakes are first visits that stop here."""
    who = [channel.pk, chat_id, user_id]
    pending = [InboundMessage.Status.RECEIVED.value, InboundMessage.Status.PROCESSING.value]
    with connection.cursor() as cursor:
        cursor.execute(_chat_probe_sql(connection.vendor), [*who, *who, *pending])
        return cursor.fetchone() is not None


def chat_history(*, channel: Any, chat_id: str, user_id: str, limit: int) -> list[dict[str, Any]]:
    """One person's latest ``limit`` turns in one chat of ``channel``, oldest first:
    ``{role: "user"|"assistant", message_id, text, platform_message_id, rating}`` —
    ``platform_message_id`` is the platform's id of the user message (the one a user turn stores, the
    one an answer replies to; "" when unknown), ``rating`` the answer's stored 1–5 rating or None.
    Messages still waiting for the pipeline come last as user turns (``message_id`` None), so a
    reload does not hide them."""
    if not _chat_has_history(channel=channel, chat_id=chat_id, user_id=user_id):
        return []
    turns = list(
        Message.objects.filter(
            conversation__channel=channel,
            conversation__chat_id=chat_id,
            conversation__user_id=user_id,
            role__in=[Message.Role.USER, Message.Role.ASSISTANT],
        )
        .select_related("inbound")
        .order_by("-created_at", "-id")[:limit]
    )
    turns.reverse()
    ratings = dict(
        Feedback.objects.filter(message__in=[m for m in turns if m.role == Message.Role.ASSISTANT]).values_list(
            "message_id", "rating"
        )
    )
    history: list[dict[str, Any]] = []
    seen_inbound: set[int] = set()
    for m in turns:
        if m.role == Message.Role.USER and m.inbound_id:
            seen_inbound.add(m.inbound_id)
        history.append(
            {
                "role": "user" if m.role == Message.Role.USER else "assistant",
                "message_id": m.pk,
                "text": m.text,
                "platform_message_id": m.inbound.platform_message_id if m.inbound else "",
                "rating": ratings.get(m.pk) if m.role == Message.Role.ASSISTANT else None,
            }
        )
    pending = InboundMessage.objects.filter(
        channel=channel,
        chat_id=chat_id,
        user_id=user_id,
        status__in=[InboundMessage.Status.RECEIVED, InboundMessage.Status.PROCESSING],
    ).order_by("received_at", "id")[:limit]
    for row in pending:
        if row.pk not in seen_inbound and not row.messages.filter(role=Message.Role.USER).exists():
            history.append(
                {
                    "role": "user",
                    "message_id": None,
                    "text": row.text,
                    "platform_message_id": row.platform_message_id,
                    "rating": None,
                }
            )
    return history[-limit:]
