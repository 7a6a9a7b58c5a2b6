"""Providers against fake OpenAI-compatible and Anthropic servers speaking the real wire formats."""

from __future__ import annotations

import pytest

from apps.llm.providers import provider_for
from apps.llm.providers.anthropic_messages import to_anthropic
from apps.llm.types import ProviderError

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is Parley?"},
]


def test_openai_complete_sends_the_request_and_reads_usage(fake_openai):
    fake_openai.set(text="A chat platform.", tokens_in=21, tokens_out=4)
    p = provider_for(kind="openai", endpoint=fake_openai.url, api_key="sk-test-123456")
    c = p.complete(MESSAGES, model="glm-4", max_tokens=100, timeout=2, temperature=0.3)
    assert (c.text, c.tokens_in, c.tokens_out, c.model) == ("A chat platform.", 21, 4, "glm-4")
    req = fake_openai.requests[0]
    body = req.json()
    assert body["model"] == "glm-4" and body["max_tokens"] == 100 and body["temperature"] == 0.3
    assert body["messages"] == MESSAGES
    assert req.headers["Authorization"] == "Bearer sk-test-123456"


def test_openai_stream_yields_pieces_and_returns_usage(fake_openai):
    fake_openai.set(text="One two three", tokens_in=7, tokens_out=3)
    p = provider_for(kind="openai", endpoint=fake_openai.url, api_key="k")
    gen = p.stream(MESSAGES, model="m", max_tokens=50, timeout=2)
    pieces = []
    while True:
        try:
            pieces.append(next(gen))
        except StopIteration as stop:
            completion = stop.value
            break
    assert pieces == ["One ", "two ", "three"]
    assert (completion.text, completion.tokens_in, completion.tokens_out) == ("One two three", 7, 3)
    assert fake_openai.requests[0].json()["stream"] is True


def test_azure_openai_uses_deployment_path_and_api_key_header(fake_openai):
    p = provider_for(kind="openai", endpoint=fake_openai.azure_url, api_key="azure-key-1", api_version="2024-06-01")
    assert p.complete(MESSAGES, model="my-deployment", max_tokens=10, timeout=2).text
    req = fake_openai.requests[0]
    assert req.path == "/openai/deployments/my-deployment/chat/completions"
    assert req.query["api-version"] == ["2024-06-01"]
    assert req.headers["api-key"] == "azure-key-1"


def test_anthropic_complete_and_stream(fake_anthropic):
    fake_anthropic.set(text="Claude says hi", tokens_in=11, tokens_out=3)
    p = provider_for(kind="anthropic", endpoint=fake_anthropic.url + "/v1", api_key="ak-test-999")
    c = p.complete(MESSAGES, model="claude-x", max_tokens=64, timeout=2)
    assert (c.text, c.tokens_in, c.tokens_out) == ("Claude says hi", 11, 3)
    body = fake_anthropic.requests[0].json()
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": "user", "content": "What is Parley?"}]
    headers = {k.lower(): v for k, v in fake_anthropic.requests[0].headers.items()}
    assert headers["x-api-key"] == "ak-test-999"

    gen = p.stream(MESSAGES, model="claude-x", max_tokens=64, timeout=2)
    pieces = []
    try:
        while True:
            pieces.append(next(gen))
    except StopIteration as stop:
        completion = stop.value
    assert "".join(pieces) == "Claude says hi" and len(pieces) == 3
    assert (completion.tokens_in, completion.tokens_out) == (11, 3)


def test_anthropic_turns_alternate_and_start_with_the_user():
    system, turns = to_anthropic(
        [
            {"role": "assistant", "content": "Welcome!"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]
    )
    assert system == ""
    assert turns == [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c"}]


@pytest.mark.parametrize(
    ("behaviour", "outcome", "words"),
    [
        ({"status": 500}, "error", "HTTP 500"),
        ({"status": 429, "error_message": "Too many requests"}, "rate_limited", "Too many requests"),
        (
            {"status": 401, "error_message": "Incorrect API key provided: sk-live-abcdef"},
            "error",
            "rejected the API key",
        ),
        ({"garbage": b"<html>502 Bad Gateway</html>"}, "error", "malformed answer"),
        ({"garbage": b'{"unexpected": true}'}, "error", "malformed answer"),
    ],
)
def test_openai_errors_are_classified_and_never_show_the_key(fake_openai, behaviour, outcome, words):
    fake_openai.set(**behaviour)
    p = provider_for(kind="openai", endpoint=fake_openai.url, api_key="sk-live-abcdef")
    with pytest.raises(ProviderError) as info:
        p.complete(MESSAGES, model="m", max_tokens=10, timeout=2)
    assert info.value.outcome == outcome
    assert words in str(info.value)
    assert "sk-live-abcdef" not in str(info.value)


def test_anthropic_overloaded_is_a_retryable_error(fake_anthropic):
    fake_anthropic.set(status=529, error_message="Overloaded")
    p = provider_for(kind="anthropic", endpoint=fake_anthropic.url, api_key="k")
    with pytest.raises(ProviderError) as info:
        p.complete(MESSAGES, model="m", max_tokens=10, timeout=2)
    assert info.value.retryable and "Overloaded" in str(info.value)


def test_connection_refused_is_a_clear_error():
    p = provider_for(kind="openai", endpoint="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ProviderError) as info:
        p.complete(MESSAGES, model="m", max_tokens=10, timeout=2)
    assert "cannot connect" in str(info.value)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("streaming", [False, True])
def test_providers_estimate_unreported_usage_alike(fake_openai, fake_anthropic, kind, streaming):
    """A server that reports no usage (zeros): both providers estimate the same way, with the one
    estimate Parley has (apps.llm.tokens), whether the answer streams or not."""
    from apps.llm.tokens import estimate_message_tokens, estimate_tokens

    fake = fake_openai if kind == "openai" else fake_anthropic
    fake.set(text="你好，世界。 Parley answers.", tokens_in=0, tokens_out=0)
    p = provider_for(kind=kind, endpoint=fake.url, api_key="k")
    if streaming:
        gen = p.stream(MESSAGES, model="m", max_tokens=50, timeout=2)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                completion = stop.value
                break
    else:
        completion = p.complete(MESSAGES, model="m", max_tokens=50, timeout=2)
    assert completion.text == "你好，世界。 Parley answers."
    assert completion.tokens_out == estimate_tokens(completion.text) == 6 + 4
    assert completion.tokens_in == estimate_message_tokens(MESSAGES)


def test_token_estimate_counts_cjk_characters_and_punctuation_one_each():
    from apps.llm.tokens import estimate_tokens

    assert estimate_tokens("") == 0
    assert estimate_tokens("你好，世界。") == 6  # CJK punctuation is a token of its own, too
    assert estimate_tokens("こんにちは") == 5 and estimate_tokens("안녕") == 2
    assert estimate_tokens("abcdefgh") == 2 and estimate_tokens("abcdefghi") == 3
