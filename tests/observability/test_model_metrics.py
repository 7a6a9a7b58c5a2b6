"""Model, fallback and cache series after real traffic: webhook → task → model router (primary
fails at a fake OpenAI-compatible server, the fallback answers) → reply."""

from __future__ import annotations

import pytest

from apps.bots.models import BotFallback
from tests.factories import make_model
from tests.fakes.llm import FakeOpenAI

from .conftest import post_message, scrape, value


@pytest.fixture
def models(testim_setup):
    with FakeOpenAI() as primary_api, FakeOpenAI() as fallback_api:
        tenant, bot = testim_setup["tenant"], testim_setup["bot"]
        primary = make_model(tenant, "gpt-main", endpoint=primary_api.url, api_key="sk-obs-primary", timeout_s="0.5")
        # The fallback answers at once; its timeout only has to hold on a busy CI machine.
        fallback = make_model(tenant, "gpt-backup", endpoint=fallback_api.url, api_key="sk-obs-backup", timeout_s="10")
        bot.model = primary
        bot.save()
        BotFallback.objects.create(bot=bot, model=fallback, position=1)
        primary_api.set(delay=60)  # the primary hangs (until the test ends): its 0.5 s timeout sends the question on
        fallback_api.set(text="Our returns policy allows 30 days.", tokens_in=12, tokens_out=7)
        yield primary_api, fallback_api


def test_model_calls_fallbacks_and_cache_lookups_are_counted(client, testim_setup, models):
    server = testim_setup["server"]
    before = scrape(client)
    assert post_message(client, "acme-testim", msg_id="k-1", text="What are your opening hours?").status_code == 200
    assert (
        post_message(
            client, "acme-testim", msg_id="q-1", text="Can I return a jacket?", user="user-2", chat="chat-2"
        ).status_code
        == 200
    )
    after = scrape(client)

    # (Two senders, so each question is a fresh conversation the knowledge entries and cache can answer.)
    texts = [r.json()["text"] for r in server.requests_to("/send")]
    assert any("9 to 5" in t for t in texts) and any("30 days" in t for t in texts)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    primary = {"tenant": "acme", "model": "gpt-main", "provider": "openai"}
    backup = {"tenant": "acme", "model": "gpt-backup", "provider": "openai"}
    assert delta("parley_model_calls_total", outcome="timeout", **primary) == 1
    assert delta("parley_model_calls_total", outcome="ok", **primary) == 0
    assert delta("parley_model_calls_total", outcome="ok", **backup) == 1
    assert delta("parley_model_call_duration_seconds_count", **backup) == 1
    assert delta("parley_model_tokens_total", direction="in", **backup) == 12
    assert delta("parley_model_tokens_total", direction="out", **backup) == 7
    assert delta("parley_fallbacks_total", tenant="acme", bot="helpdesk") == 1

    lookups = {"tenant": "acme", "bot": "helpdesk", "kind": "knowledge"}
    assert delta("parley_answer_cache_total", result="hit", **lookups) == 1
    assert delta("parley_answer_cache_total", result="miss", **lookups) == 1
    assert delta("ai_response_duration_seconds_count", tenant="acme", bot="helpdesk", platform="testim") == 2
