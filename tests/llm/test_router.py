"""The router against fake providers: fallback, timeouts, breaker, live config, streaming, cost."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from apps.bots import routing
from apps.bots.models import DEFAULT_FAILURE_TEXT, BotFallback
from apps.llm import breaker
from tests.factories import make_bot, make_model, make_tenant

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]
#: A model that answers is given this long: only a failing test ever waits it out, and an answer on
#: a busy shared CI machine is never cut off by it.
TIMEOUT = "10"
#: The timeout of a model that hangs (``short_timeout``): what those tests measure.
SHORT = 0.5
#: How long a hanging fake holds its answer (released when the test ends).
HANG = 60
#: Seconds of slack for thread start-up and a busy shared CI machine: far below HANG and TIMEOUT,
#: so "abandoned at its timeout" is still told apart from "waited for the hang".
MARGIN = 5.0


@pytest.fixture
def chain(tenant, bot, fake_openai, fake_anthropic):
    """The bot's primary is an OpenAI-compatible fake; its fallback is an Anthropic fake."""
    primary = make_model(tenant, "primary", endpoint=fake_openai.url, api_key="sk-primary-key", timeout_s=TIMEOUT)
    fallback = make_model(
        tenant, "fallback", provider="anthropic", endpoint=fake_anthropic.url, model="claude-x", timeout_s=TIMEOUT
    )
    bot.model = primary
    bot.save()
    BotFallback.objects.create(bot=bot, model=fallback, position=1)
    fake_openai.set(text="Primary answer.")
    fake_anthropic.set(text="Fallback answer.")
    return primary, fallback


def outcomes(answer):
    return [(a.model, a.outcome) for a in answer.attempts]


def short_timeout(model, seconds: float = SHORT) -> None:
    """Give a model that is about to hang a short timeout (saved as the admin would)."""
    model.timeout_s = seconds
    model.save()


def wait_until_half_open(model, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while breaker.state_of(model).state != breaker.HALF_OPEN:
        assert time.monotonic() < deadline, "the breaker did not half-open after its cooldown"
        time.sleep(0.05)


def test_primary_answers(bot, chain, fake_anthropic):
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.text == "Primary answer."
    assert (answer.source, answer.provider, answer.model_config) == ("model", "openai", chain[0])
    assert outcomes(answer) == [("primary", "ok")] and not answer.fallback_used
    assert fake_anthropic.calls == 0


def test_hanging_primary_is_abandoned_at_its_timeout(bot, chain, fake_openai, fake_anthropic):
    short_timeout(chain[0])
    fake_openai.set(delay=HANG)
    fake_anthropic.set(text="Fallback answer.", delay=0.2)
    started = time.monotonic()
    answer = routing.ask(bot=bot, messages=MESSAGES)
    elapsed = time.monotonic() - started
    assert answer.text == "Fallback answer." and answer.fallback_used
    assert outcomes(answer) == [("primary", "timeout"), ("fallback", "ok")]
    assert elapsed < SHORT + 0.2 + MARGIN  # not the hang
    assert answer.attempts[0].latency_ms >= SHORT * 1000 - 50


def test_streaming_primary_without_first_token_is_abandoned(bot, chain, fake_openai, fake_anthropic):
    short_timeout(chain[0])
    fake_openai.set(first_token_delay=HANG)  # headers arrive at once, then nothing
    pieces: list[str] = []
    started = time.monotonic()
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append)
    assert time.monotonic() - started < SHORT + MARGIN  # not the hang
    assert "".join(pieces) == "Fallback answer." == answer.text
    assert len(pieces) == 2  # streamed piece by piece, none from the primary
    assert outcomes(answer) == [("primary", "timeout"), ("fallback", "ok")]


def test_slow_stream_after_first_token_is_not_cut_at_the_first_token_timeout(bot, chain, fake_openai):
    # The first token comes at once, the whole answer after 2.4 s: beyond the 2 s first-token timeout
    # (which a busy machine does not reach for the first token).
    short_timeout(chain[0], 2.0)
    fake_openai.set(text="a b c d", token_delay=0.8)
    pieces: list[str] = []
    started = time.monotonic()
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append)
    assert time.monotonic() - started > 2.0
    assert answer.text == "a b c d" and pieces == ["a ", "b ", "c ", "d"]
    assert outcomes(answer) == [("primary", "ok")] and answer.latency_ms < 2000


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [
        ({"status": 500}, "error"),
        ({"status": 503}, "error"),
        ({"status": 429}, "rate_limited"),
        ({"garbage": b"not json at all"}, "error"),
    ],
)
def test_errors_fall_back(bot, chain, fake_openai, behaviour, outcome):
    fake_openai.set(**behaviour)
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.text == "Fallback answer."
    assert outcomes(answer) == [("primary", outcome), ("fallback", "ok")]


def test_everything_failing_gives_the_failure_text_never_silence(bot, chain, fake_openai, fake_anthropic):
    fake_openai.set(status=500)
    fake_anthropic.set(status=529)
    pieces: list[str] = []
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append)
    assert answer.failed and answer.text == DEFAULT_FAILURE_TEXT and pieces == [DEFAULT_FAILURE_TEXT]
    assert outcomes(answer) == [("primary", "error"), ("fallback", "error")]
    bot.failure_text = "We are busy, sorry."
    bot.save()
    assert routing.ask(bot=bot, messages=MESSAGES).text == "We are busy, sorry."


def test_breaker_opens_then_probes_and_closes(settings, bot, chain, fake_openai):
    settings.LLM_BREAKER_FAILURES = 2
    settings.LLM_BREAKER_COOLDOWN = 2  # the calls below must all fall inside it, on a busy machine too
    primary = chain[0]
    fake_openai.set(status=500)
    for _ in range(2):
        routing.ask(bot=bot, messages=MESSAGES)
    assert fake_openai.calls == 2
    assert breaker.state_of(primary).state == breaker.OPEN

    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert fake_openai.calls == 2  # skipped, not called
    assert outcomes(answer) == [("primary", "breaker_open"), ("fallback", "ok")]

    wait_until_half_open(primary)
    fake_openai.set(text="I am back.")
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.text == "I am back." and fake_openai.calls == 3
    assert breaker.state_of(primary).state == breaker.CLOSED


def test_failed_probe_opens_the_breaker_again(settings, bot, chain, fake_openai):
    settings.LLM_BREAKER_FAILURES = 1
    settings.LLM_BREAKER_COOLDOWN = 2  # the last call below must fall inside it, on a busy machine too
    fake_openai.set(status=500)
    routing.ask(bot=bot, messages=MESSAGES)
    wait_until_half_open(chain[0])
    routing.ask(bot=bot, messages=MESSAGES)  # the probe, fails
    assert fake_openai.calls == 2
    assert breaker.state_of(chain[0]).state == breaker.OPEN
    routing.ask(bot=bot, messages=MESSAGES)
    assert fake_openai.calls == 2


def test_config_change_is_used_on_the_next_call(bot, chain, fake_openai, fake_openai_2):
    fake_openai_2.set(text="From the new endpoint.")
    assert routing.ask(bot=bot, messages=MESSAGES).text == "Primary answer."
    primary = type(chain[0]).objects.get(pk=chain[0].pk)  # as the admin would: another object, same row
    primary.endpoint = fake_openai_2.url
    primary.model = "new-model"
    primary.save()
    answer = routing.ask(bot=bot, messages=MESSAGES)  # the same, now stale, bot object
    assert answer.text == "From the new endpoint."
    assert fake_openai_2.requests[0].json()["model"] == "new-model"


def test_primary_switched_on_the_bot_row_is_used_without_reloading(bot, chain, fake_anthropic):
    from apps.bots.models import Bot

    Bot.objects.filter(pk=bot.pk).update(model=chain[1])
    assert routing.ask(bot=bot, messages=MESSAGES).text == "Fallback answer."


def test_language_route_picks_the_primary(bot, chain, tenant, fake_openai_2):
    make_model(tenant, "zh-model", endpoint=fake_openai_2.url)
    fake_openai_2.set(text="中文回答")
    bot.language_routes = {"zh": "zh-model"}
    bot.save()
    assert routing.ask(bot=bot, messages=MESSAGES, language="zh-CN").text == "中文回答"
    assert routing.ask(bot=bot, messages=MESSAGES, language="en").text == "Primary answer."


def test_another_tenants_model_is_never_used(bot, chain, fake_openai_2):
    other = make_tenant("globex")
    foreign = make_model(other, "theirs", endpoint=fake_openai_2.url)
    BotFallback.objects.create(bot=bot, model=foreign, position=5)
    specs = routing.chain(bot, routing.named_models(bot))
    assert [s.name for s in specs] == ["primary", "fallback"]


def test_env_default_model(settings, db, fake_openai):
    settings.AI_PROVIDER = "generic"
    settings.AI_ENDPOINT = fake_openai.url
    settings.API_KEY = "sk-env-key"
    settings.MODEL_NAME = "env-model"
    settings.MAX_TOKENS = 77
    bot = make_bot(make_tenant("envco"))
    fake_openai.set(text="From the env default.")
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.text == "From the env default." and answer.model_config is None
    body = fake_openai.requests[0].json()
    assert (body["model"], body["max_tokens"]) == ("env-model", 77)
    assert fake_openai.requests[0].headers["Authorization"] == "Bearer sk-env-key"


def test_builtin_default_needs_no_key(db):
    bot = make_bot(make_tenant("fresh"))
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.source == "builtin" and "I don't have an answer to that yet" in answer.text


def test_tokens_and_cost(bot, chain, fake_openai):
    primary = chain[0]
    primary.cost_input_per_1k = Decimal("0.5")
    primary.cost_output_per_1k = Decimal("1.5")
    primary.save()
    fake_openai.set(text="Costly.", tokens_in=1200, tokens_out=400)
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert (answer.tokens_in, answer.tokens_out) == (1200, 400)
    assert answer.cost == Decimal("1.200000")  # 1.2 * 0.5 + 0.4 * 1.5


def test_streaming_reports_usage_and_cost(bot, chain, fake_anthropic):
    fallback = chain[1]
    from apps.bots.models import Bot

    Bot.objects.filter(pk=bot.pk).update(model=fallback)
    fallback.cost_output_per_1k = Decimal("2")
    fallback.save()
    fake_anthropic.set(text="x y", tokens_in=10, tokens_out=500)
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=lambda piece: None)
    assert (answer.tokens_in, answer.tokens_out, answer.cost) == (10, 500, Decimal("1.000000"))


def test_cancel_stops_between_tokens(bot, chain, fake_openai, fake_anthropic):
    fake_openai.set(text="one two three four five six", token_delay=0.1)
    pieces: list[str] = []
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append, cancelled=lambda: len(pieces) >= 2)
    assert answer.cancelled and answer.text == "one two "
    assert fake_anthropic.calls == 0
    assert outcomes(answer) == [("primary", "cancelled")]


def test_cancel_while_waiting_for_a_hanging_model(bot, chain, fake_openai, fake_anthropic):
    fake_openai.set(delay=HANG)
    started = time.monotonic()
    deadline = started + 0.2
    answer = routing.ask(bot=bot, messages=MESSAGES, cancelled=lambda: time.monotonic() > deadline)
    assert answer.cancelled and time.monotonic() - started < 0.2 + MARGIN  # not the timeout, nor the hang
    assert outcomes(answer) == [("primary", "cancelled")]
    assert fake_anthropic.calls == 0


def test_api_key_is_not_logged(bot, chain, fake_openai, fake_anthropic, caplog):
    fake_openai.set(status=401, error_message="Incorrect API key provided: sk-primary-key")
    fake_anthropic.set(status=500)
    with caplog.at_level("DEBUG"):
        answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.failed
    everything = caplog.text + repr([r.__dict__ for r in caplog.records]) + repr(answer.attempts)
    assert "sk-primary-key" not in everything


def test_fallbacks_are_tried_in_position_order(bot, tenant, fake_openai, fake_openai_2, fake_anthropic):
    fake_openai.set(status=500)
    fake_anthropic.set(status=500)
    fake_openai_2.set(text="Third in line.")
    bot.model = make_model(tenant, "first", endpoint=fake_openai.url)
    bot.save()
    last = make_model(tenant, "last", endpoint=fake_openai_2.url)
    second = make_model(tenant, "second", provider="anthropic", endpoint=fake_anthropic.url)
    BotFallback.objects.create(bot=bot, model=last, position=9)
    BotFallback.objects.create(bot=bot, model=second, position=2)
    answer = routing.ask(bot=bot, messages=MESSAGES)
    assert answer.text == "Third in line."
    assert [a.model for a in answer.attempts] == ["first", "second", "last"]


def test_new_models_take_the_fallback_timeout_from_the_environment(settings, tenant):
    settings.AI_FALLBACK_TIMEOUT = 4.5
    from apps.llm.models import ModelConfig

    assert ModelConfig(tenant=tenant, name="x").timeout_s == Decimal("4.50")


def test_a_failing_token_sink_does_not_lose_the_answer(bot, chain, fake_openai):
    fake_openai.set(text="a b c")
    seen: list[str] = []

    def sink(piece: str) -> None:
        seen.append(piece)
        raise ConnectionError("socket closed")

    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=sink)
    assert answer.text == "a b c" and not answer.failed and seen == ["a "]


def test_metrics_count_outcomes_fallbacks_and_tokens(bot, chain, fake_openai, fake_anthropic):
    from apps.core import metrics

    def value(metric, *labels):
        return metric.labels(*labels)._value.get()

    before_timeout = value(metrics.MODEL_CALLS, "acme", "primary", "openai", "timeout")
    before_ok = value(metrics.MODEL_CALLS, "acme", "fallback", "anthropic", "ok")
    before_fb = value(metrics.FALLBACKS, "acme", "helpdesk")
    before_out = value(metrics.MODEL_TOKENS, "acme", "fallback", "anthropic", "out")
    short_timeout(chain[0])
    fake_openai.set(delay=HANG)
    fake_anthropic.set(tokens_out=7)
    routing.ask(bot=bot, messages=MESSAGES)
    assert value(metrics.MODEL_CALLS, "acme", "primary", "openai", "timeout") == before_timeout + 1
    assert value(metrics.MODEL_CALLS, "acme", "fallback", "anthropic", "ok") == before_ok + 1
    assert value(metrics.FALLBACKS, "acme", "helpdesk") == before_fb + 1
    assert value(metrics.MODEL_TOKENS, "acme", "fallback", "anthropic", "out") == before_out + 7
