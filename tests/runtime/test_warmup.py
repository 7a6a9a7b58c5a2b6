"""The warm-up (apps/runtime/warmup.py): what a first answer would otherwise pay for is done before
the process serves. Each check runs in a fresh Python process, the way a server starts, with the
model on a loopback fake and nothing of the warm-up's own leaving the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fakes.llm import FakeAnthropic, FakeOpenAI

BASE_DIR = Path(__file__).resolve().parents[2]

# One streamed answer from each provider kind, through Parley's own provider code; the SDK response
# types pydantic had to build during that call are printed (the work a warm-up is for).
FIRST_CALL = textwrap.dedent(
    """
    import json, os, sys
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
    import pydantic
    from apps.runtime.warmup import warm
    if sys.argv[1] == "warm":
        parts = warm("test")
    else:
        parts = {}
    built = []
    original = pydantic.BaseModel.model_rebuild.__func__
    def counted(cls, *args, **kwargs):
        built.append(cls.__name__)
        return original(cls, *args, **kwargs)
    pydantic.BaseModel.model_rebuild = classmethod(counted)
    from apps.llm.providers import provider_for
    answers = {}
    for kind, endpoint in (("openai", os.environ["OPENAI_URL"]), ("anthropic", os.environ["ANTHROPIC_URL"])):
        provider = provider_for(kind=kind, endpoint=endpoint, api_key="sk-test")
        messages = [{"role": "user", "content": "When are you open?"}]
        answers[kind] = "".join(provider.stream(messages, model="m", max_tokens=50, timeout=10))
    print(json.dumps({"parts": sorted(parts), "built": built, "answers": answers}))
    """
)


def first_call(tmp_path: Path, mode: str, openai_url: str, anthropic_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        PARLEY_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
        OPENAI_URL=openai_url,
        ANTHROPIC_URL=anthropic_url,
        PARLEY_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL, mode], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture
def models():
    with FakeOpenAI() as openai_fake, FakeAnthropic() as anthropic_fake:
        openai_fake.set(text="We open at nine.")
        anthropic_fake.set(text="We open at nine.")
        yield openai_fake, anthropic_fake


def test_after_the_warm_up_the_first_model_call_builds_nothing(tmp_path, models):
    openai_fake, anthropic_fake = models
    cold, _ = first_call(tmp_path / "cold", "cold", openai_fake.url, anthropic_fake.url)
    warm, log = first_call(tmp_path / "warm", "warm", openai_fake.url, anthropic_fake.url)

    assert cold["built"], "without the warm-up the first call builds the SDKs' response types"
    assert warm["built"] == []
    assert warm["answers"] == cold["answers"] == {"openai": "We open at nine.", "anthropic": "We open at nine."}
    assert {"sdks", "tasks"} <= set(warm["parts"])
    # The rehearsal is in memory: the fakes saw only the real calls (one per kind, per process).
    assert openai_fake.calls == anthropic_fake.calls == 2
    # Nothing to say on a healthy start but the one "warmed up" line.
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines if line["level"] != "info"] == []
    assert [line["message"] for line in lines if line["logger"].startswith("celery")] == []
