"""Fixtures for the observability tests: the test-only "testim" platform and a /metrics reader."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.channels.platforms import registry
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant

from .testim import ADAPTER_PATH, PLATFORM, sign

SECRET = "testim-signing-secret"


@pytest.fixture
def testim_platform(monkeypatch):
    """Register the test-only adapter the way a real platform is registered: one registry line."""
    monkeypatch.setitem(registry.PLATFORMS, PLATFORM, registry.Platform(PLATFORM, PLATFORM, ADAPTER_PATH))
    registry.get_adapter.cache_clear()
    yield PLATFORM
    registry.get_adapter.cache_clear()


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Exposition text → {(sample name, frozenset(labels)): value}."""
    samples: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """The value of the sample with exactly these labels (0 when absent, as Prometheus would treat a new series)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client) -> dict[tuple[str, frozenset], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain")
    return parse_metrics(resp.content.decode())


def post_message(
    client,
    channel_key: str,
    *,
    msg_id: str,
    text: str,
    user: str = "user-4711",
    chat: str = "chat-1",
    secret: str = SECRET,
):
    body = json.dumps({"id": msg_id, "chat": chat, "user": user, "text": text}).encode()
    return client.post(
        f"/webhooks/{PLATFORM}/{channel_key}/",
        data=body,
        content_type="application/json",
        headers={"X-Testim-Signature": sign(secret, body)},
    )


@pytest.fixture
def testim_setup(transactional_db, testim_platform, fake_server):
    """Tenant acme, bot helpdesk with one knowledge entry, a testim channel whose API is the fake server."""
    tenant = make_tenant("acme")
    bot = make_bot(tenant)
    make_knowledge(bot, "What are your opening hours?", "We are open **9 to 5**, Monday to Friday.")
    fake_server.route("POST", "/send", lambda req: (200, {"id": f"sent-{len(fake_server.requests)}"}))
    fake_server.route("POST", "/broken/send", lambda req: (403, {"error": "bot not in chat"}))
    channel = make_channel(
        bot, platform=PLATFORM, key="acme-testim", credentials={"secret": SECRET}, api_base=fake_server.url
    )
    return {"tenant": tenant, "bot": bot, "channel": channel, "server": fake_server}
