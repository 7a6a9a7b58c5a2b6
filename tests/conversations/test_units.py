"""Small pieces of the pipeline: command parsing, rate-limit counters, feedback links, tokens."""

from __future__ import annotations

import pytest
from django.core import signing

from apps.conversations.commands import interrupts_answer, parse_command
from apps.conversations.feedback_links import FeedbackLinkInvalid, feedback_token_load, feedback_url
from apps.conversations.pipeline.context import turn_tokens as estimate_tokens
from apps.core import ratelimit


@pytest.mark.parametrize(
    ("text", "name", "arg"),
    [
        ("/help", "help", ""),
        ("  /HELP  ", "help", ""),
        ("/help@ParleyBot", "help", ""),
        ("/帮助", "help", ""),
        ("/reset", "reset", ""),
        ("/stop", "stop", ""),
        ("／停止", "stop", ""),
        ("/lang zh", "lang", "zh"),
        ("/weather Beijing", "unknown", "Beijing"),
    ],
)
def test_parse_command(text, name, arg):
    cmd = parse_command(text)
    assert cmd is not None and cmd.name == name and cmd.arg == arg


@pytest.mark.parametrize("text", ["hello", "/ 2", "1/2", "/usr/bin/env", "", "see /help"])
def test_not_a_command(text):
    assert parse_command(text) is None


def test_what_interrupts_an_answer():
    assert interrupts_answer("another question")
    assert interrupts_answer("/stop")
    assert not interrupts_answer("/help")


def test_rate_limit_window():
    decisions = [ratelimit.hit("t", "u", limit=3, window_seconds=60, now=1000.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 < decisions[-1].retry_after <= 60
    assert ratelimit.hit("t", "u", limit=3, window_seconds=60, now=1060.0).allowed  # next window
    assert ratelimit.hit("t", "other", limit=3, window_seconds=60, now=1000.0).allowed  # per subject
    assert ratelimit.hit("t", "u", limit=0, window_seconds=60).allowed  # 0: unlimited


class _Msg:
    def __init__(self, pk, tenant_id):
        self.pk = pk
        self.conversation = type("C", (), {"tenant_id": tenant_id})()


def test_feedback_link_round_trip(settings):
    settings.PUBLIC_BASE_URL = "https://parley.example.com"
    url = feedback_url(_Msg(42, 7))
    assert url.startswith("https://parley.example.com/feedback/") and url.endswith("/")
    token = url.rsplit("/", 2)[1]
    assert feedback_token_load(token) == (42, 7)


def test_feedback_link_tampered_or_expired():
    token = feedback_url(_Msg(42, 7)).rsplit("/", 2)[1]
    forged = token.replace("42.7", "43.7", 1)
    with pytest.raises(FeedbackLinkInvalid) as exc:
        feedback_token_load(forged)
    assert not exc.value.expired
    with pytest.raises(FeedbackLinkInvalid):
        feedback_token_load("garbage")
    old = signing.TimestampSigner(salt="parley.feedback")
    with pytest.raises(FeedbackLinkInvalid) as exc:
        feedback_token_load(old.sign("42.7"), max_age=-1)
    assert exc.value.expired
    other_salt = signing.TimestampSigner(salt="something.else").sign("42.7")
    with pytest.raises(FeedbackLinkInvalid):
        feedback_token_load(other_salt)


def test_token_estimate_counts_chinese_per_character():
    assert estimate_tokens("你好世界") > estimate_tokens("abcd")
    assert estimate_tokens("word " * 40) >= 50
