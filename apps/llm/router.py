"""The model router: which model answers, and what happens when it cannot.

``generate`` tries the bot's primary model, then its fallbacks in order, and returns an ``Answer``
that always has text: when every model fails it is the bot's polite failure text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.bots.models import DEFAULT_FAILURE_TEXT

from .types import Answer, Attempt, ProviderError

logger = logging.getLogger(__name__)


@dataclass
class ModelSpec:
    """A callable model: a ModelConfig row, or the deployment default from the environment."""

    name: str
    provider: str
    endpoint: str
    api_key: str
    model: str
    max_tokens: int
    timeout_s: float
    temperature: float = 0.7
    cost_input_per_1k: Decimal = Decimal("0")
    cost_output_per_1k: Decimal = Decimal("0")
    config: Any = None  # the ModelConfig, when there is one
    tenant_slug: str = ""

    @classmethod
    def from_config(cls, cfg: Any) -> ModelSpec:
        return cls(
            name=cfg.name,
            provider=cfg.provider,
            endpoint=cfg.endpoint,
            api_key=cfg.api_key,
            model=cfg.model,
            max_tokens=cfg.max_tokens,
            timeout_s=float(cfg.timeout_s),
            temperature=float(cfg.temperature),
            cost_input_per_1k=cfg.cost_input_per_1k,
            cost_output_per_1k=cfg.cost_output_per_1k,
            config=cfg,
            tenant_slug=cfg.tenant.slug if cfg.tenant_id else "",
        )

    @classmethod
    def env_default(cls) -> ModelSpec:
        provider = settings.AI_PROVIDER
        if provider == "generic":
            provider = "openai"
        return cls(
            name="env-default",
            provider=provider,
            endpoint=settings.AI_ENDPOINT,
            api_key=settings.API_KEY,
            model=settings.MODEL_NAME,
            max_tokens=settings.MAX_TOKENS,
            timeout_s=settings.AI_FALLBACK_TIMEOUT,
        )


def model_chain(bot: Any, language: str = "") -> list[ModelSpec]:
    """Primary (per-language route first, then the bot's model, else the env default), then fallbacks."""
    chain: list[Any] = []
    route = (bot.language_routes or {}).get(language[:2]) if language else None
    if route:
        routed = bot.tenant.models.filter(name=route, enabled=True).first()
        if routed is not None:
            chain.append(routed)
    if bot.model_id and bot.model.enabled and bot.model not in chain:
        chain.append(bot.model)
    for cfg in bot.fallback_configs():
        if cfg.enabled and cfg not in chain:
            chain.append(cfg)
    specs = [ModelSpec.from_config(c) for c in chain]
    if not specs:
        specs = [ModelSpec.env_default()]
    return specs


def get_provider(spec: ModelSpec, language: str = "en") -> Any:
    from .providers.builtin import BuiltinProvider

    if spec.provider == "builtin":
        return BuiltinProvider(language)
    raise ProviderError(f"provider '{spec.provider}' is not available", outcome="error", retryable=False)


def failure_text(bot: Any) -> str:
    return bot.failure_text or DEFAULT_FAILURE_TEXT


def generate(
    *,
    bot: Any,
    messages: list[dict],
    language: str = "en",
    on_token: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Answer:
    """Answer ``messages`` (system prompt + context + the new turn) for ``bot``."""
    attempts: list[Attempt] = []
    for index, spec in enumerate(model_chain(bot, language)):
        started = time.perf_counter()
        try:
            provider = get_provider(spec, language)
            completion = provider.complete(
                messages, model=spec.model, max_tokens=spec.max_tokens, timeout=spec.timeout_s
            )
        except ProviderError as exc:
            attempts.append(
                Attempt(
                    spec.name, spec.provider, exc.outcome, int((time.perf_counter() - started) * 1000), str(exc)[:300]
                )
            )
            continue
        latency_ms = int((time.perf_counter() - started) * 1000)
        attempts.append(Attempt(spec.name, spec.provider, "ok", latency_ms))
        cost = (spec.cost_input_per_1k * completion.tokens_in + spec.cost_output_per_1k * completion.tokens_out) / 1000
        if on_token:
            on_token(completion.text)
        return Answer(
            text=completion.text,
            source="builtin" if spec.provider == "builtin" else "model",
            model_config=spec.config,
            model_name=completion.model or spec.model,
            provider=spec.provider,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
            cost=cost,
            latency_ms=latency_ms,
            attempts=attempts,
            fallback_used=index > 0,
        )
    logger.error("every model failed", extra={"attempts": [a.as_dict() for a in attempts]})
    return Answer(
        text=failure_text(bot), source="failure", attempts=attempts, failed=True, fallback_used=len(attempts) > 1
    )
