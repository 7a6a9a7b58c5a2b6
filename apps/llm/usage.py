"""Usage and cost selectors: tokens and money per tenant / bot / model / day.

Read from the assistant messages the pipeline stores (each carries the answering model, tokens in
and out, and cost), so the figures add up to exactly what individual messages show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncDate


def usage_by_day(
    *,
    tenant_ids: Iterable[int] | None = None,
    bot_ids: Iterable[int] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[dict[str, Any]]:
    """One row per (day, tenant, bot, model) with answers, model answers, cached answers, failures,
    tokens in/out and cost, newest day first.

    ``tenant_ids`` None means every tenant (callers pass the user's tenants); ``since``/``until``
    are inclusive dates (UTC). ``model`` is the model config's name, or the provider's model name
    for answers from the deployment default; '' for knowledge, cache and failure answers.
    """
    Message = apps.get_model("conversations", "Message")
    qs = Message.objects.filter(role="assistant")
    if tenant_ids is not None:
        qs = qs.filter(conversation__tenant_id__in=list(tenant_ids))
    if bot_ids is not None:
        qs = qs.filter(conversation__bot_id__in=list(bot_ids))
    if since is not None:
        qs = qs.filter(created_at__date__gte=since)
    if until is not None:
        qs = qs.filter(created_at__date__lte=until)
    rows = (
        qs.annotate(day=TruncDate("created_at"))
        .values(
            "day",
            "conversation__tenant_id",
            "conversation__tenant__slug",
            "conversation__bot_id",
            "conversation__bot__slug",
            "model_config_id",
            "model_config__name",
            "model_name",
        )
        .annotate(
            answers=Count("id"),
            model_answers=Count("id", filter=Q(source="model")),
            cached=Count("id", filter=Q(cached=True)),
            failed=Count("id", filter=Q(failed=True)),
            tokens_in=Coalesce(Sum("tokens_in"), 0),
            tokens_out=Coalesce(Sum("tokens_out"), 0),
            cost=Coalesce(Sum("cost"), Decimal("0")),
        )
        .order_by("-day", "conversation__tenant__slug", "conversation__bot__slug", "model_config__name", "model_name")
    )
    merged: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        model = r["model_config__name"] or (
            r["model_name"] if r["model_config_id"] is None and r["model_answers"] else ""
        )
        key = (r["day"], r["conversation__tenant_id"], r["conversation__bot_id"], model)
        row = merged.setdefault(
            key,
            {
                "day": r["day"],
                "tenant_id": r["conversation__tenant_id"],
                "tenant": r["conversation__tenant__slug"],
                "bot_id": r["conversation__bot_id"],
                "bot": r["conversation__bot__slug"],
                "model": model,
                "answers": 0,
                "model_answers": 0,
                "cached": 0,
                "failed": 0,
                "tokens_in": 0,
                "tokens_out": 0,
                "cost": Decimal("0"),
            },
        )
        for field in ("answers", "model_answers", "cached", "failed", "tokens_in", "tokens_out", "cost"):
            row[field] += r[field]
    return list(merged.values())


def usage_totals(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of ``usage_by_day`` rows (answers, tokens, cost)."""
    total: dict[str, Any] = {
        "answers": 0,
        "model_answers": 0,
        "cached": 0,
        "failed": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost": Decimal("0"),
    }
    for row in rows:
        for field in total:
            total[field] += row[field]
    return total
