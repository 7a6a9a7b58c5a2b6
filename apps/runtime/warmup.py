"""A warm first request: what the first message after a start would otherwise pay for, done before
the process takes any.

``warm()`` runs where each process starts serving: at the import of ``config.asgi`` (so uvicorn and
gunicorn workers accept connections — and ``/readyz`` can answer — only once it is done) and in
Celery's ``worker_init`` (before the worker says it is ready and takes tasks). It

* imports every platform adapter, the pipeline's steps, the model router and the model providers'
  SDKs, and renders a sample answer in every platform's dialect (the Markdown parser and each
  renderer build their tables on first use);
* loads the language detector's models for the languages Parley detects;
* opens the database connection (with PostgreSQL, the process's connection pool fills to its
  minimum) and the cache's Redis connection pool;
* builds the HTTP clients of the enabled chat models (``provider_for`` keeps them per endpoint and
  key), so the first model call only connects.

Each part is best effort: a database or model that is not reachable yet is logged and left to the
first request (``/readyz`` reports the database and Redis separately). ``PARLEY_WARMUP=0`` skips it
all. Management commands other than ``run`` never call it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

SAMPLE = "**Parley** is ready: [docs](https://example.com/docs), `code`.\n\n- one\n- two\n\n1. first"


def _platforms() -> None:
    from apps.channels.platforms.registry import get_adapter, platforms

    for name in platforms():
        adapter = get_adapter(name)
        if adapter is not None:
            adapter.render(SAMPLE)


def _pipeline() -> None:
    import apps.conversations.pipeline.steps
    import apps.conversations.tasks
    import apps.llm.providers.anthropic_messages
    import apps.llm.providers.builtin
    import apps.llm.providers.openai_compatible
    import apps.llm.router  # noqa: F401
    from apps.core.pii import mask_text

    mask_text("warm-up 13800138000 warm@example.com")


def _language() -> None:
    from apps.core.language import detect_language

    detect_language("When are you open on Saturdays?")
    detect_language("你们周六几点开门？")


def _database() -> None:
    from django.db import connection

    connection.ensure_connection()
    connection.close()  # back to the pool (PostgreSQL); this thread serves no requests


def _cache() -> None:
    from django.core.cache import cache

    cache.get("parley:warmup")


def _models() -> None:
    from apps.llm.models import ModelConfig
    from apps.llm.providers import provider_for

    for config in ModelConfig.objects.filter(enabled=True, purpose="chat")[:50]:
        provider = provider_for(
            kind=config.provider,
            endpoint=config.endpoint,
            api_key=config.api_key,
            api_version=config.api_version or "",
            language="en",
        )
        client = getattr(provider, "client", None)
        if callable(client):  # the SDK providers: the shared client for this endpoint and key
            client()


PARTS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("platforms", _platforms),
    ("pipeline", _pipeline),
    ("language", _language),
    ("database", _database),
    ("cache", _cache),
    ("models", _models),
)


def warm(where: str) -> dict[str, float]:
    """Warm this process up (see the module's docstring); returns each part's milliseconds. Never
    raises: a part that fails is logged and skipped."""
    if os.environ.get("PARLEY_WARMUP", "1").strip().lower() in ("0", "false", "no", "off"):
        return {}
    took: dict[str, float] = {}
    started = time.perf_counter()
    for name, part in PARTS:
        t0 = time.perf_counter()
        try:
            part()
        except Exception as exc:  # not reachable yet, or not configured: the first request does it
            logger.warning("warm-up: %s skipped (%s)", name, type(exc).__name__)
        took[name] = round((time.perf_counter() - t0) * 1000, 1)
    total = round((time.perf_counter() - started) * 1000, 1)
    logger.info("warmed up", extra={"where": where, "warmup_ms": total, "parts_ms": took})
    return took
