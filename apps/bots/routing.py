"""A bot's models as stored now, for the model router.

``named_models`` reads what the router's rule (``apps.llm.router.model_chain``) needs — the
models the bot names and its fallback order — in the portable ORM; the pipeline's claim reads the
same in its own statement on PostgreSQL. ``ask`` is a model answer for a bot and nothing else (no
knowledge entries, no answer cache: those are steps of the conversation pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from apps.llm import router
from apps.llm.models import ModelConfig
from apps.llm.types import Answer

from .models import DEFAULT_FAILURE_TEXT, Bot, BotFallback


@dataclass
class NamedModels:
    """The models a bot names (primary, fallbacks, language routes: rows of its tenant, enabled or
    not) and its fallbacks' model ids in the order they are tried."""

    candidates: list[Any]
    fallback_ids: list[int]


def named_models(bot: Bot) -> NamedModels:
    """Read from the database now (two queries)."""
    fallback_ids = list(
        BotFallback.objects.filter(bot_id=bot.pk).order_by("position", "id").values_list("model_id", flat=True)
    )
    routes = bot.language_routes if isinstance(bot.language_routes, dict) else {}
    wanted = Q(pk__in=fallback_ids) | Q(name__in=[str(name) for name in routes.values()])
    if bot.model_id:
        wanted |= Q(pk=bot.model_id)
    candidates = list(ModelConfig.objects.filter(wanted, tenant_id=bot.tenant_id).select_related("tenant"))
    return NamedModels(candidates=candidates, fallback_ids=fallback_ids)


def chain(bot: Bot, models: NamedModels, language: str = "") -> list[router.ModelSpec]:
    """The models ``bot`` tries for ``language``, in order (the router's rule)."""
    return router.model_chain(
        models.candidates,
        tenant_id=bot.tenant_id,
        primary_id=bot.model_id,
        fallback_ids=models.fallback_ids,
        routes=bot.language_routes,
        language=language,
    )


def failure_text(bot: Bot) -> str:
    return bot.failure_text or DEFAULT_FAILURE_TEXT


def ask(
    *,
    bot: Bot,
    messages: list[dict],
    language: str = "en",
    on_token: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Answer:
    """The models' answer to ``messages`` for ``bot`` as it is stored now (a long-lived ``bot``
    object, such as a web-chat socket's, still gets the models configured in the admin now)."""
    bot = Bot.objects.select_related("tenant").get(pk=bot.pk)
    return router.generate(
        chain(bot, named_models(bot), language),
        messages,
        fail_text=failure_text(bot),
        language=language,
        on_token=on_token,
        cancelled=cancelled,
        tenant=bot.tenant.slug,
        bot=bot.slug,
    )
