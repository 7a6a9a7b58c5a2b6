"""The model router: which model answers, and what happens when it cannot.

``generate`` tries the bot's primary model, then its fallbacks in order, and returns an ``Answer``
that always has text: when every model fails it is the bot's polite failure text. Before any model,
a context-free ``question`` is matched against the bot's knowledge entries and its answer cache,
and identical questions in flight at once share one model call.

The bot's models are read from the database on every call (no process-level cache), so a model or
route changed in the admin is used for the next message by every web and worker process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.bots.models import DEFAULT_FAILURE_TEXT
from apps.core import metrics

from . import answer_cache, breaker
from .providers import provider_for
from .types import Answer, Attempt, Completion, ProviderError

logger = logging.getLogger(__name__)

__all__ = ["Answer", "ModelSpec", "failure_text", "generate", "model_chain"]


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
    api_version: str = ""
    breaker_clean: bool = False  # set by breaker.allow: no failure recorded, a success resets nothing

    def __repr__(self) -> str:  # never print the key
        return f"ModelSpec({self.name!r}, {self.provider!r}, {self.model!r})"

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
            api_version=getattr(cfg, "api_version", ""),
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

    @property
    def version(self) -> str:
        """Changes whenever the model's settings change (part of answer-cache keys)."""
        if self.config is not None:
            stamp = self.config.updated_at.timestamp() if self.config.updated_at else 0
            return f"{self.config.pk}@{stamp:.3f}"
        raw = f"{self.provider}|{self.endpoint}|{self.model}|{self.max_tokens}"
        return "env:" + hashlib.sha256(raw.encode()).hexdigest()[:12]


_BOT_FIELDS = (
    "tenant_id",
    "model_id",
    "language_routes",
    "failure_text",
    "cache_answers",
    "cache_ttl_seconds",
    "updated_at",
)


def _bot_row(bot: Any) -> dict[str, Any]:
    """The bot's routing and caching settings as stored now (the ``bot`` object may be stale)."""
    from apps.bots.models import Bot

    row = Bot.objects.filter(pk=bot.pk).values(*_BOT_FIELDS).first()
    return row if row is not None else {f: getattr(bot, f) for f in _BOT_FIELDS}


def _bot_fields(bot: Any) -> dict[str, Any]:
    """The routing and caching settings of a ``bot`` object that was just read from the database."""
    return {f: getattr(bot, f) for f in _BOT_FIELDS}


def model_chain(
    bot: Any, language: str = "", *, row: dict[str, Any] | None = None, configs: list[Any] | None = None
) -> list[ModelSpec]:
    """Primary (per-language route first, then the bot's model, else the env default), then fallbacks.

    Reads the bot's model settings fresh from the database (``row``: already read by the caller),
    so a long-lived ``bot`` object (a web-chat socket's) still gets the models configured now. Only
    the bot's own tenant's enabled models are used. One query besides the bot row, none when the
    caller read the bot's usable model rows already (``configs``: ModelConfig rows of the bot's
    tenant, enabled, that are its model, a fallback — with ``fb_position`` / ``fb_id`` — or a
    language route's model; the pipeline's claim reads them in its own statement).
    """
    row = row or _bot_row(bot)
    route = (row["language_routes"] or {}).get(language[:2]) if language else None
    if configs is None:
        configs = _usable_configs(bot, row, route)
    chain: list[Any] = [c for c in configs if route and c.name == route]
    chain += [c for c in configs if c.pk == row["model_id"] and c not in chain]
    chain += sorted(
        (c for c in configs if c.fb_id is not None and c not in chain), key=lambda c: (c.fb_position, c.fb_id)
    )
    specs = [ModelSpec.from_config(c) for c in chain]
    if not specs:
        specs = [ModelSpec.env_default()]
    return specs


def _usable_configs(bot: Any, row: dict[str, Any], route: str | None) -> list[Any]:
    from django.db.models import OuterRef, Q, Subquery

    from apps.bots.models import BotFallback

    from .models import ModelConfig

    fallback = BotFallback.objects.filter(bot_id=bot.pk, model_id=OuterRef("pk")).order_by("position", "id")
    wanted = Q(pk__in=BotFallback.objects.filter(bot_id=bot.pk).values("model_id"))
    if row["model_id"]:
        wanted |= Q(pk=row["model_id"])
    if route:
        wanted |= Q(name=route)
    return list(
        ModelConfig.objects.filter(wanted, tenant_id=row["tenant_id"], enabled=True)
        .select_related("tenant")
        .annotate(fb_position=Subquery(fallback.values("position")[:1]), fb_id=Subquery(fallback.values("id")[:1]))
    )


def failure_text(bot: Any) -> str:
    return bot.failure_text or DEFAULT_FAILURE_TEXT


# --- settings (read per call so tests and operators can change them) ---------------------------


def _stream_idle_s() -> float:
    """Longest gap between streamed pieces once the first one arrived."""
    return float(getattr(settings, "LLM_STREAM_IDLE_TIMEOUT", 30))


def _max_answer_s() -> float:
    """Longest a single model call may take in all (streamed answers included)."""
    return float(getattr(settings, "LLM_MAX_ANSWER_SECONDS", 120))


# --- one attempt ---------------------------------------------------------------------------------


class _Cancelled(Exception):
    def __init__(self, partial: str) -> None:
        super().__init__("cancelled")
        self.partial = partial


class _Interrupted(Exception):
    """A stream failed after text was already passed to ``on_token``."""

    def __init__(self, error: ProviderError, partial: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial


class _Helpers:
    """Reusable daemon threads for model calls (one per call at a time; an idle one is reused,
    else one is started, and one left idle for ``IDLE_S`` ends). Never a fixed-size pool: a call
    abandoned at its deadline keeps its thread until its own HTTP timeout ends it, and must never
    make the next call wait for a thread."""

    IDLE_S = 60.0

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="llm-call", daemon=True).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            try:
                job = inbox.get(timeout=self.IDLE_S)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                continue  # handed a job just as it timed out: the job is on its way
            try:
                job()
            except BaseException:  # the job reports its own errors; never lose the thread to one
                logger.debug("model call helper failed", exc_info=True)
            with self._lock:
                self._idle.append(inbox)


_helpers = _Helpers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _helpers.__init__())


def _call(
    spec: ModelSpec,
    messages: list[dict],
    *,
    language: str,
    on_token: Callable[[str], None] | None,
    cancelled: Callable[[], bool] | None,
) -> Completion:
    """One call of one model, abandoned at its deadline.

    The provider runs on a helper thread and reports through a queue, so this thread can give up
    at the exact deadline — no answer (no first token when streaming) within ``spec.timeout_s`` —
    even while the helper is stuck connecting or reading; ``on_token`` is called on this thread.
    The provider's HTTP client is the process's long-lived one for the model's endpoint and key
    (connections are reused); abandoning a call closes only that call's response.
    Raises ProviderError, _Cancelled or _Interrupted.
    """
    provider = provider_for(
        kind=spec.provider,
        endpoint=spec.endpoint,
        api_key=spec.api_key,
        api_version=spec.api_version,
        language=language,
    )
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    abandoned = threading.Event()
    streaming = on_token is not None
    kwargs = {"model": spec.model, "max_tokens": spec.max_tokens, "timeout": spec.timeout_s}
    kwargs["temperature"] = spec.temperature

    def work() -> None:
        try:
            if not streaming:
                events.put(("done", provider.complete(messages, **kwargs)))
                return
            pieces = provider.stream(messages, **kwargs)
            while not abandoned.is_set():
                try:
                    piece = next(pieces)
                except StopIteration as stop:
                    events.put(("done", stop.value))
                    return
                events.put(("token", piece))
            pieces.close()
        except BaseException as exc:  # handed to the caller's thread
            events.put(("error", exc))

    started = time.monotonic()
    hard_stop = started + max(_max_answer_s(), spec.timeout_s)
    deadline = started + spec.timeout_s
    received: list[str] = []
    _helpers.run(work)
    try:
        while True:
            if cancelled is not None and cancelled():
                raise _Cancelled("".join(received))
            remaining = min(deadline, hard_stop) - time.monotonic()
            if remaining <= 0:
                what = "no first token" if streaming else "no answer"
                err = ProviderError(
                    f"{what} within {spec.timeout_s:g} s" if not received else "the stream stalled", outcome="timeout"
                )
                if received:
                    raise _Interrupted(err, "".join(received))
                raise err
            try:
                kind, value = events.get(timeout=min(remaining, 0.05) if cancelled is not None else remaining)
            except queue.Empty:
                continue
            if kind == "token":
                received.append(value)
                deadline = time.monotonic() + _stream_idle_s()
                assert on_token is not None
                on_token(value)
            elif kind == "done":
                return value
            else:
                err = value if isinstance(value, ProviderError) else ProviderError(f"{type(value).__name__}: {value}")
                if received:
                    raise _Interrupted(err, "".join(received))
                raise err
    finally:
        abandoned.set()
        # Closing this call's streamed response makes an abandoned helper fail fast where the socket
        # allows it; otherwise it ends at the request's own timeouts (set from spec.timeout_s) —
        # nobody waits for it. The shared client and its other connections stay open.
        try:
            provider.close()
        except Exception:
            logger.debug("closing provider failed", exc_info=True)


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


def _run_chain(
    bot: Any,
    specs: list[ModelSpec],
    messages: list[dict],
    *,
    language: str,
    on_token: Callable[[str], None] | None,
    cancelled: Callable[[], bool] | None,
    fail_text: str,
) -> Answer:
    attempts: list[Attempt] = []
    tenant = getattr(bot.tenant, "slug", "") if getattr(bot, "tenant_id", None) else ""
    for index, spec in enumerate(specs):
        if cancelled is not None and cancelled():
            return Answer(text="", source="model", attempts=attempts, cancelled=True)
        who = {"tenant": spec.tenant_slug or tenant, "model": spec.name, "provider": spec.provider}
        if not breaker.allow(spec):
            attempts.append(Attempt(spec.name, spec.provider, "breaker_open", 0, "circuit breaker open"))
            metrics.record_model_call(**who, outcome="breaker_open")
            continue
        started = time.monotonic()
        try:
            completion = _call(spec, messages, language=language, on_token=on_token, cancelled=cancelled)
        except _Cancelled as exc:
            attempts.append(Attempt(spec.name, spec.provider, "cancelled", _ms(started)))
            breaker.release_probe(spec)  # a cancelled probe proves nothing; let the next caller probe
            return Answer(text=exc.partial, source="model", attempts=attempts, cancelled=True)
        except _Interrupted as exc:
            attempts.append(Attempt(spec.name, spec.provider, exc.error.outcome, _ms(started), str(exc.error)[:300]))
            metrics.record_model_call(**who, outcome=exc.error.outcome, seconds=time.monotonic() - started)
            breaker.record_failure(spec)
            # The user has already seen this text; switching models now would repeat or contradict it.
            return Answer(
                text=exc.partial,
                source="model",
                model_config=spec.config,
                model_name=spec.model,
                provider=spec.provider,
                latency_ms=_ms(started),
                attempts=attempts,
                fallback_used=index > 0,
                truncated=True,
            )
        except ProviderError as exc:
            attempts.append(Attempt(spec.name, spec.provider, exc.outcome, _ms(started), str(exc)[:300]))
            metrics.record_model_call(**who, outcome=exc.outcome, seconds=time.monotonic() - started)
            breaker.record_failure(spec)
            logger.warning(
                "model attempt failed",
                extra={"model": spec.name, "provider": spec.provider, "outcome": exc.outcome, "error": str(exc)[:300]},
            )
            continue
        total_ms = _ms(started)
        latency_ms = completion.latency_ms if on_token is not None and completion.latency_ms else total_ms
        breaker.record_success(spec)
        attempts.append(Attempt(spec.name, spec.provider, "ok", latency_ms))
        metrics.record_model_call(
            **who,
            outcome="ok",
            seconds=latency_ms / 1000,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
        )
        if index > 0:
            metrics.record_fallback(tenant=tenant, bot=getattr(bot, "slug", ""))
        cost = (spec.cost_input_per_1k * completion.tokens_in + spec.cost_output_per_1k * completion.tokens_out) / 1000
        return Answer(
            text=completion.text,
            source="builtin" if spec.provider == "builtin" else "model",
            model_config=spec.config,
            model_name=completion.model or spec.model,
            provider=spec.provider,
            tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out,
            cost=cost.quantize(Decimal("0.000001")),
            latency_ms=latency_ms,
            attempts=attempts,
            fallback_used=index > 0,
        )
    logger.error("every model failed", extra={"attempts": [a.as_dict() for a in attempts]})
    if on_token is not None:
        on_token(fail_text)
    return Answer(text=fail_text, source="failure", attempts=attempts, failed=True, fallback_used=len(attempts) > 1)


def _shareable(answer: Answer) -> dict | None:
    """What single-flight waiters (and the answer cache) get from a leader's answer."""
    if answer.cancelled or answer.truncated:
        return None
    return {
        "text": answer.text,
        "source": answer.source,
        "model_name": answer.model_name,
        "provider": answer.provider,
        "failed": answer.failed,
    }


def _from_shared(payload: dict, *, source: str, started: float) -> Answer:
    failed = bool(payload.get("failed"))
    return Answer(
        text=payload["text"],
        source="failure" if failed else source,
        model_name=payload.get("model_name", ""),
        provider=payload.get("provider", ""),
        latency_ms=_ms(started),
        cached=not failed,
        failed=failed,
    )


def _guarded(on_token: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``on_token`` that stops being called after it raises (a closed socket, a failed message
    edit): the answer is still finished, stored and delivered the ordinary way."""
    if on_token is None:
        return None
    broken = False

    def call(piece: str) -> None:
        nonlocal broken
        if broken:
            return
        try:
            on_token(piece)
        except Exception:
            broken = True
            logger.warning("token sink failed; streaming stopped for this answer", exc_info=True)

    return call


def generate(
    *,
    bot: Any,
    messages: list[dict],
    language: str = "en",
    on_token: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    question: str | None = None,
    models: list[Any] | None = None,
    knowledge_stamp: str | None = None,
) -> Answer:
    """Answer ``messages`` (system prompt + context + the new turn) for ``bot``.

    ``question``: the user's text when the turn can be answered without context. Then a matching
    knowledge entry answers with no model call, the bot's answer cache is used when
    ``bot.cache_answers``, and identical questions in flight at once make one model call.
    ``on_token``: stream from the provider and call it with each text piece (cached, knowledge and
    failure answers arrive as one piece). ``cancelled()``: polled while waiting; when it returns
    True the call stops and the Answer has ``cancelled=True``.

    ``models`` (with ``knowledge_stamp``): ``bot`` and its usable model rows were just read from
    the database together (see ``model_chain``), so neither is read again; ``knowledge_stamp`` is
    the digest of the bot's knowledge entries read with them (see ``match_knowledge``). Without
    them the bot's settings and models are read here, fresh.

    Never raises for provider trouble: the Answer then has ``failed=True`` and the failure text.
    Every model attempt is in ``Answer.attempts``.
    """
    from apps.bots.knowledge import match_knowledge

    started = time.monotonic()
    tenant = bot.tenant.slug
    on_token = _guarded(on_token)
    fresh = _bot_fields(bot) if models is not None else _bot_row(bot)
    fail_text = fresh["failure_text"] or DEFAULT_FAILURE_TEXT
    specs = model_chain(bot, language, row=fresh, configs=models)

    def run() -> Answer:
        return _run_chain(
            bot, specs, messages, language=language, on_token=on_token, cancelled=cancelled, fail_text=fail_text
        )

    if question is None or not question.strip():
        return run()

    entry = match_knowledge(bot, question, stamp=knowledge_stamp)
    metrics.record_cache_lookup(tenant=tenant, bot=bot.slug, kind="knowledge", hit=entry is not None)
    if entry is not None:
        if on_token is not None:
            on_token(entry.answer)
        return Answer(text=entry.answer, source="knowledge", cached=True, latency_ms=_ms(started))

    stamp = fresh["updated_at"].timestamp() if fresh["updated_at"] else 0
    versions = f"bot@{stamp:.3f}|" + "|".join(s.version for s in specs)
    key = answer_cache.question_key(
        tenant_id=bot.tenant_id, bot_id=bot.pk, question=question, language=language[:2], versions=versions
    )
    if not key:
        return run()
    use_cache = bool(fresh["cache_answers"])

    def cached_answer() -> Answer | None:
        payload = answer_cache.get_answer(key)
        metrics.record_cache_lookup(tenant=tenant, bot=bot.slug, kind="answer", hit=payload is not None)
        if payload is None:
            return None
        if on_token is not None:
            on_token(payload["text"])
        return _from_shared(payload, source="cache", started=started)

    if use_cache and (hit := cached_answer()) is not None:
        return hit

    def lead() -> Answer:
        # Re-check: a flight that finished just before this one started may have filled the cache.
        if use_cache and (hit := cached_answer()) is not None:
            return hit
        answer = run()
        payload = _shareable(answer)
        if use_cache and payload and answer.source == "model" and not answer.failed:
            answer_cache.set_answer(key, payload, int(fresh["cache_ttl_seconds"]))
        return answer

    # How long a waiter waits for the leader: the whole chain's worst case in this call's mode.
    budget = sum(s.timeout_s if on_token is None else max(_max_answer_s(), s.timeout_s) for s in specs) + 5
    result, shared = answer_cache.single_flight(
        key, lead, encode=_shareable, lock_ttl=budget, wait_timeout=budget, cancelled=cancelled
    )
    if not shared:
        return result  # type: ignore[return-value]
    if result is None:
        return Answer(text="", cancelled=True, latency_ms=_ms(started))
    metrics.record_cache_lookup(tenant=tenant, bot=bot.slug, kind="single_flight", hit=True)
    if on_token is not None:
        on_token(result["text"])  # type: ignore[index]
    return _from_shared(result, source="cache", started=started)  # type: ignore[arg-type]
