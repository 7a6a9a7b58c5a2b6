from __future__ import annotations

import pytest

from tests.fakes.llm import FakeAnthropic, FakeOpenAI


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_openai_2():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_anthropic():
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _quick_breaker(settings):
    settings.LLM_BREAKER_FAILURES = 3
    settings.LLM_BREAKER_COOLDOWN = 30
