"""The model router: which model answers, and what happens when it cannot.

``model_chain`` puts a bot's models in the order they are tried (language route, primary,
fallbacks); ``generate`` tries them in that order — each within its deadline, skipping a model
whose circuit breaker is open — and returns an ``Answer`` that always has text: when every model
fails it is the bot's polite failure text.

Nothing here knows bots, knowledge entries or the answer cache: the caller reads the bot's models
as stored now and hands them in (the pipeline's claim, ``apps.bots.routing``), and the knowledge
and answer-cache short-cuts are steps of the conversation pipeline, taken before any model.
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

from apps.core import metrics

from . import breaker
from .providers import provider_for
from .types import Answer, Attempt, Completion, ProviderError

logger = logging.getLogger(__name__)

__all__ = ["Answer", "ModelSpec", "generate", "model_chain", "worst_case_seconds"]


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
    supports_tools: bool = True  # offered the bot's tools (a model config can say it does not understand them)
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
            supports_tools=getattr(cfg, "supports_tools", True),
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


def model_chain(
    candidates: list[Any],
    *,
    tenant_id: int | None,
    primary_id: int | None,
    fallback_ids: list[int],
    routes: Any,
    language: str = "",
) -> list[ModelSpec]:
    """The models to try, in order: the language's route (``routes``: language code → model name),
    then the primary, then the fallbacks in ``fallback_ids`` order. Only enabled models of the bot's
    own tenant are used; when none is left, the deployment default from the environment.

    ``candidates``: ModelConfig rows that may be among them (at least every one the bot names, as
    stored now); the rule which of them are tried, and in which order, is this function alone.
    """
    usable = [c for c in candidates if c.enabled and c.tenant_id == tenant_id]
    route = (routes if isinstance(routes, dict) else {}).get(language[:2]) if language else None
    chain: list[Any] = [c for c in usable if route and c.name == route]
    chain += [c for c in usable if c.pk == primary_id and c not in chain]
    by_id = {c.pk: c for c in usable}
    for model_id in fallback_ids:
        config = by_id.get(model_id)
        if config is not None and config not in chain:
            chain.append(config)
    specs = [ModelSpec.from_config(c) for c in chain]
    if not specs:
        specs = [ModelSpec.env_default()]
    return specs


def worst_case_seconds(chain: list[ModelSpec], *, streaming: bool) -> float:
    """The longest trying ``chain`` can take (every model to its deadline), for whoever waits on it."""
    return sum(s.timeout_s if not streaming else max(_max_answer_s(), s.timeout_s) for s in chain)


# --- settings (read per call so tests and operators can change them) ---------------------------


def _stream_idle_s() -> float:
    """Longest gap between streamed pieces once the first one arrived."""
    return float(settings.LLM_STREAM_IDLE_TIMEOUT)


def _max_answer_s() -> float:
    """Longest a single model call may take in all (streamed answers included)."""
    return float(settings.LLM_MAX_ANSWER_SECONDS)


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
    tools: list[dict] | None = None,
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
    if tools and spec.supports_tools:
        kwargs["tools"] = tools
    elif not spec.supports_tools:
        messages = without_tool_turns(messages)

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
                deadline = time.monotonic() + _stream_idle_s()
                if not value:  # a tool call advanced: alive, nothing to show
                    continue
                received.append(value)
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


def without_tool_turns(messages: list[dict]) -> list[dict]:
    """``messages`` for a model that does not understand tool turns (a fallback in the middle of a
    tool-calling answer): what the tools gave is told to it as text."""
    if not any(m["role"] == "tool" or m.get("tool_calls") for m in messages):
        return messages
    out: list[dict] = []
    for m in messages:
        if m["role"] == "tool":
            out.append({"role": "user", "content": f"[Result of the tool {m.get('name', '')}]\n{m['content']}"})
        elif m.get("tool_calls"):
            if m.get("content"):
                out.append({"role": "assistant", "content": m["content"]})
        else:
            out.append(m)
    return out


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


def _run_chain(
    specs: list[ModelSpec],
    messages: list[dict],
    *,
    language: str,
    on_token: Callable[[str], None] | None,
    cancelled: Callable[[], bool] | None,
    fail_text: str,
    tenant: str,
    bot: str,
    tools: list[dict] | None = None,
) -> Answer:
    attempts: list[Attempt] = []
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
            completion = _call(spec, messages, language=language, on_token=on_token, cancelled=cancelled, tools=tools)
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
            metrics.record_fallback(tenant=tenant, bot=bot)
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
            tool_calls=completion.tool_calls,
        )
    logger.error("every model failed", extra={"attempts": [a.as_dict() for a in attempts]})
    if on_token is not None:
        on_token(fail_text)
    return Answer(text=fail_text, source="failure", attempts=attempts, failed=True, fallback_used=len(attempts) > 1)


def guarded(on_token: Callable[[str], None] | None) -> Callable[[str], None] | None:
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
    chain: list[ModelSpec],
    messages: list[dict],
    *,
    fail_text: str,
    language: str = "en",
    on_token: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    tenant: str = "",
    bot: str = "",
    tools: list[dict] | None = None,
) -> Answer:
    """Answer ``messages`` (system prompt + context + the new turn) with the first model of
    ``chain`` (``model_chain``) that answers, each within its deadline and past an open breaker.

    ``on_token``: stream from the provider and call it with each text piece (the failure text
    arrives as one piece). ``cancelled()``: polled while waiting; when it returns True the call
    stops and the Answer has ``cancelled=True``. ``tenant`` and ``bot`` label the metrics.
    ``tools`` (``[{"name", "description", "parameters"}]``) are offered to every model of the chain
    that supports tools; the calls the answering model asks for are ``Answer.tool_calls`` (the
    caller runs them and asks again with the results: ``apps.conversations.pipeline.tools``).

    Never raises for provider trouble: when every model fails, the Answer has ``failed=True`` and
    ``fail_text``. Every model attempt is in ``Answer.attempts``.
    """
    return _run_chain(
        chain,
        messages,
        language=language,
        on_token=guarded(on_token),
        cancelled=cancelled,
        fail_text=fail_text,
        tenant=tenant,
        bot=bot,
        tools=tools,
    )
