"""A warm first request: what the first message after a start would otherwise pay for, done before
the process takes any.

``warm()`` runs where each process starts serving: at the import of ``config.asgi`` (so uvicorn and
gunicorn workers accept connections — and ``/readyz`` can answer — only once it is done) and in
Celery's ``worker_init`` (before the worker says it is ready and takes tasks). It

* builds the platform API calls' shared HTTP client, imports every platform adapter, the
  pipeline's steps, the model router and the model providers' SDKs, and renders a sample answer in
  every platform's dialect (the Markdown parser and each renderer build their tables on first use);
* compiles one query of every model (nothing is run): Django fills a model's field maps and
  column caches on its first query;
* loads the language detector's models for the languages Parley detects;
* opens the database connection (with PostgreSQL, the process's connection pool fills to its
  minimum) and the cache's Redis connection pool;
* builds the HTTP clients of the enabled chat models (``provider_for`` keeps them per endpoint and
  key), so the first model call only connects;
* rehearses one model call per provider SDK in memory (``_sdks``: a streamed answer with text and a
  tool call, and a whole one, each through Parley's own provider code over an in-memory transport —
  nothing leaves the process): the SDKs build their response types and platform headers on first
  use, about 50 ms of a first answer;
* with tasks run in this process (the embedded default), runs one task through Celery's tracer,
  which loads its extensions on first use (about 40 ms of a first answer). A Celery worker builds
  its tracers when it starts.

Each part is best effort: a database or model that is not reachable yet is logged and left to the
first request (``/readyz`` reports the database and Redis separately). ``PARLEY_WARMUP=0`` skips it
all. Management commands other than ``run`` never call it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import httpx

logger = logging.getLogger(__name__)

SAMPLE = "**Parley** is ready: [docs](https://example.com/docs), `code`.\n\n- one\n- two\n\n1. first"


def _platforms() -> None:
    from apps.channels.platforms import http
    from apps.channels.platforms.registry import get_adapter, platforms

    http.client()  # the platform API calls' shared client (its TLS context takes 30-60 ms to build)

    for name in platforms():
        adapter = get_adapter(name)
        if adapter is not None:
            adapter.render(SAMPLE)


def _pipeline() -> None:
    import apps.conversations.delivery
    import apps.conversations.pipeline.heartbeat
    import apps.conversations.pipeline.process
    import apps.conversations.pipeline.steps
    import apps.conversations.tasks
    import apps.llm.providers.anthropic_messages
    import apps.llm.providers.builtin
    import apps.llm.providers.openai_compatible
    import apps.llm.router  # noqa: F401
    from apps.conversations.pipeline.storage import storage
    from apps.core.pii import mask_text

    mask_text("warm-up 13800138000 warm@example.com")
    storage()  # this database's implementation, imported and built


def _orm() -> None:
    from django.apps import apps

    for model in apps.get_models():
        # Compiling a query (nothing is run) fills the model's field maps and column caches, which
        # Django builds on a model's first query.
        str(model._base_manager.select_related().filter(pk=None).query)


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


# What the in-memory model answers (``_sdks``): the shapes of the real APIs, text and a tool call.
_OPENAI_STREAM = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Ready"}}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
                    ]
                },
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
]
_OPENAI_ANSWER = {
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Ready", "tool_calls": None}}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
_ANTHROPIC_USAGE = {"input_tokens": 3, "output_tokens": 1}
_ANTHROPIC_MESSAGE = {
    "id": "msg_warmup",
    "type": "message",
    "role": "assistant",
    "model": "warm-up",
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": _ANTHROPIC_USAGE,
}
_ANTHROPIC_STREAM = [
    {"type": "message_start", "message": {**_ANTHROPIC_MESSAGE, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Ready"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 1},
    },
    {"type": "message_stop"},
]
_ANTHROPIC_ANSWER = {
    **_ANTHROPIC_MESSAGE,
    "content": [{"type": "text", "text": "Ready"}, {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}],
}


def _in_memory_answers(request: httpx.Request) -> httpx.Response:
    """The model API's answer to ``request``, made up here (``_sdks``)."""
    import json

    body = json.loads(request.content or b"{}")
    anthropic = request.url.path.endswith("/messages")
    if not body.get("stream"):
        answer = _ANTHROPIC_ANSWER if anthropic else {**_OPENAI_ANSWER, "id": "w", "object": "chat.completion"}
        return httpx.Response(200, json={**answer, "created": 0, "model": "warm-up"} if not anthropic else answer)
    if anthropic:
        lines = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in _ANTHROPIC_STREAM]
    else:
        chunks = [
            {**c, "id": "w", "object": "chat.completion.chunk", "created": 0, "model": "warm-up"}
            for c in _OPENAI_STREAM
        ]
        lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content="".join(lines).encode())


def _sdks() -> None:
    from apps.llm.providers import AnthropicProvider, OpenAICompatibleProvider

    messages = [{"role": "system", "content": "warm-up"}, {"role": "user", "content": "Ready?"}]
    tools = [{"name": "t", "description": "warm-up", "parameters": {"type": "object", "properties": {}}}]
    for cls in (OpenAICompatibleProvider, AnthropicProvider):
        provider = cls(endpoint="http://warm-up.invalid/v1", api_key="warm-up")
        sdk_client = provider.build_client(httpx.Client(transport=httpx.MockTransport(_in_memory_answers)))
        provider.client = lambda c=sdk_client: c  # this provider object only: never the shared clients
        kwargs = {"model": "warm-up", "max_tokens": 8, "timeout": 5.0, "tools": tools}
        list(provider.stream(messages, **kwargs))
        provider.complete(messages, **kwargs)


def _tasks() -> None:
    from django.conf import settings

    if settings.TASKS_MODE == "celery":
        return  # sent to a worker, which builds its tracers when it starts
    from celery import current_app

    trace_log = logging.getLogger("celery.app.trace")
    level = trace_log.level
    trace_log.setLevel(logging.WARNING)  # not a task of anyone's: no "succeeded" line on every start
    try:
        current_app.tasks["celery.accumulate"].apply(args=("warm-up",))
    finally:
        trace_log.setLevel(level)


PARTS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("platforms", _platforms),
    ("pipeline", _pipeline),
    ("orm", _orm),
    ("language", _language),
    ("database", _database),
    ("cache", _cache),
    ("models", _models),
    ("sdks", _sdks),
    ("tasks", _tasks),
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
