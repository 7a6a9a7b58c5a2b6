"""The "test this model" service: a real call, latency or the provider's own error."""

from __future__ import annotations

from apps.llm.services import model_test
from tests.factories import make_model


def test_working_model_reports_latency(tenant, fake_openai):
    fake_openai.set(text="OK", delay=0.05)
    result = model_test(make_model(tenant, endpoint=fake_openai.url))
    assert result.ok and result.latency_ms >= 50 and result.sample == "OK"
    assert f"{result.latency_ms} ms" in result.message


def test_slow_model_is_flagged_against_its_timeout(tenant, fake_anthropic):
    fake_anthropic.set(delay=0.3)
    cfg = make_model(tenant, provider="anthropic", endpoint=fake_anthropic.url, timeout_s="0.2")
    result = model_test(cfg)
    assert result.ok and "Slower than its 0.2 s timeout" in result.message


def test_wrong_key_shows_the_providers_message_without_the_key(tenant, fake_openai):
    fake_openai.set(status=401, error_message="Incorrect API key provided: sk-wrong-1234")
    result = model_test(make_model(tenant, endpoint=fake_openai.url, api_key="sk-wrong-1234"))
    assert not result.ok
    assert "rejected the API key" in result.message and "Incorrect API key provided" in result.message
    assert "sk-wrong-1234" not in result.message


def test_wrong_endpoint_is_a_clear_message(tenant):
    result = model_test(make_model(tenant, endpoint="http://127.0.0.1:9/v1"))
    assert not result.ok and "cannot connect to the endpoint" in result.message


def test_endpoint_that_is_not_an_api(tenant, fake_openai):
    fake_openai.set(garbage=b"<html><body>Welcome to nginx!</body></html>")
    result = model_test(make_model(tenant, endpoint=fake_openai.url))
    assert not result.ok and "check the endpoint URL" in result.message


def test_unknown_model_name(tenant, fake_openai):
    fake_openai.set(status=404, error_message="The model `gpt-9` does not exist")
    result = model_test(make_model(tenant, endpoint=fake_openai.url, model="gpt-9"))
    assert not result.ok and "does not exist" in result.message and "404" in result.message
