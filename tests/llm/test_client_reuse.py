"""Model calls reuse one HTTP client per endpoint and key: connections are kept between answers, an
abandoned call closes only its own response, and an edited model gets a client of its own."""

from __future__ import annotations

import threading
import time

import pytest

from apps.bots import routing
from apps.bots.models import BotFallback
from apps.llm.models import ModelConfig
from tests.factories import make_model

MESSAGES = [{"role": "user", "content": "Hello?"}]


class ConnectionCounter:
    """Counts the TCP connections a fake server accepts (each keep-alive connection once)."""

    def __init__(self, fake) -> None:
        self.count = 0
        self._lock = threading.Lock()
        server = fake.server._server
        accept = server.get_request

        def counted():
            conn = accept()
            with self._lock:
                self.count += 1
            return conn

        server.get_request = counted


@pytest.fixture
def primary(tenant, bot, fake_openai):
    # The fake answers at once; the timeout only has to hold on a busy CI machine.
    model = make_model(tenant, "primary", endpoint=fake_openai.url, api_key="sk-first-key", timeout_s="10")
    bot.model = model
    bot.save()
    fake_openai.set(text="Primary answer.")
    return model


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
def test_answers_from_one_model_share_one_connection(bot, primary, fake_openai, streaming):
    connections = ConnectionCounter(fake_openai)
    for _ in range(3):
        pieces: list[str] = []
        answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append if streaming else None)
        assert answer.text == "Primary answer." and not answer.failed
        if streaming:
            assert "".join(pieces) == "Primary answer."
    assert fake_openai.calls == 3
    assert connections.count == 1


def test_an_edited_key_is_sent_on_the_next_call(bot, primary, fake_openai):
    routing.ask(bot=bot, messages=MESSAGES)
    edited = ModelConfig.objects.get(pk=primary.pk)  # as the admin would: another object, same row
    edited.api_key = "sk-second-key"
    edited.save()
    assert routing.ask(bot=bot, messages=MESSAGES).text == "Primary answer."
    keys = [r.headers.get("Authorization") for r in fake_openai.requests]
    assert keys == ["Bearer sk-first-key", "Bearer sk-second-key"]


def test_abandoned_stream_leaves_the_client_usable(tenant, bot, primary, fake_openai, fake_openai_2):
    """A stream with no first token is abandoned at its deadline and its connection closed; the
    next call to the same model, on the same shared client, answers at once."""
    ModelConfig.objects.filter(pk=primary.pk).update(timeout_s="0.5")
    fallback = make_model(tenant, "fallback", endpoint=fake_openai_2.url, timeout_s="10")
    BotFallback.objects.create(bot=bot, model=fallback, position=1)
    fake_openai_2.set(text="Fallback answer.")
    connections = ConnectionCounter(fake_openai)

    fake_openai.set(first_token_delay=60)  # (released when the test ends)
    pieces: list[str] = []
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append)
    assert answer.text == "Fallback answer." and "".join(pieces) == "Fallback answer."
    assert [a.outcome for a in answer.attempts] == ["timeout", "ok"]

    fake_openai.set(text="Primary is back.")
    # A timeout an answer never reaches on a busy machine (the client is shared all the same: the
    # timeout is passed per call). A stalled connection handed out again would hang to it.
    ModelConfig.objects.filter(pk=primary.pk).update(timeout_s="10")
    started = time.monotonic()
    pieces = []
    answer = routing.ask(bot=bot, messages=MESSAGES, on_token=pieces.append)
    assert answer.text == "Primary is back." and "".join(pieces) == "Primary is back."
    assert time.monotonic() - started < 5  # at once, not at the timeout
    # The stalled connection was closed, not returned to the pool: the answer came on a new one.
    assert connections.count == 2
