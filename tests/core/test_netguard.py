"""The outbound guard (apps/core/netguard.py): server-side calls a tenant admin can point somewhere go
only where the operator allows — addresses normalised, checked when a connection opens, refused
before anything is sent by the forms and the Test buttons.

The suite's settings allow loopback (the fakes live there, as an operator allows an on-premise
server); these tests put the production default back and take the allowance away."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError

from apps.channels.models import Channel
from apps.channels.platforms import http as platform_http
from apps.channels.platforms.base import PlatformError
from apps.channels.services import channel_send_test
from apps.core import netguard
from apps.llm.providers import provider_for
from apps.llm.services import model_test
from apps.llm.types import ProviderError
from tests.factories import make_bot, make_channel, make_model, make_tenant
from tests.fakes.llm import FakeOpenAI
from tests.fakes.server import FakeServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production_guard(settings):
    """The production default, with no allow-list."""
    settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = settings.OUTBOUND_BLOCKED_PRODUCTION
    settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS = ""
    return settings


@pytest.fixture
def fake():
    with FakeServer() as server:
        server.route("GET", "/", lambda req: (200, {"ok": True}))
        server.route("POST", "/", lambda req: (200, {"ok": True}))
        yield server


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


REFUSED_IN_PRODUCTION = [
    "http://[::ffff:169.254.169.254]/latest/meta-data/",  # IPv4-mapped metadata address
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",  # the same, in hex
    "http://[::ffff:127.0.0.1]:8080/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0177.0.0.1/",  # octal
    "http://0x7f.1/",  # hex, short form
    "http://169.254.169.254/",
    "http://100.100.100.200/",  # a cloud's metadata service in the shared range
    "http://10.1.2.3:11434/v1",
    "http://172.16.0.9/",
    "http://192.168.1.1/",
    "http://127.0.0.1:9/",
    "http://localhost:11434/v1",
    "http://api.localhost/",
    "http://[::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1%25eth0]/",
    "http://0.0.0.0:8000/",
]


@pytest.mark.parametrize("url", REFUSED_IN_PRODUCTION)
def test_the_production_default_refuses_internal_addresses_in_every_spelling(production_guard, url):
    assert "may not call" in netguard.check_url(url), url


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://93.184.216.34/", "http://[2606:4700::1111]/"])
def test_public_addresses_pass(production_guard, url):
    assert netguard.check_url(url) == ""


def test_an_allow_list_opens_one_network_whatever_its_spelling(production_guard):
    production_guard.PARLEY_OUTBOUND_ALLOWED_NETWORKS = "10.0.5.0/24"
    assert netguard.check_url("http://10.0.5.20:8000/v1") == ""
    assert netguard.check_url("http://[::ffff:10.0.5.20]:8000/v1") == ""
    assert "may not call" in netguard.check_url("http://10.0.6.1/")
    assert "may not call" in netguard.check_url("http://[::ffff:169.254.169.254]/")


def test_only_http_urls_with_a_host(production_guard):
    assert (
        netguard.check_url("file:///etc/passwd")
        and netguard.check_url("gopher://x/")
        and netguard.check_url("http:///x")
    )


def test_the_embedded_default_allows_loopback_and_private_but_not_metadata(settings):
    settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = settings.OUTBOUND_BLOCKED_EMBEDDED
    settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS = ""
    assert netguard.check_url("http://127.0.0.1:11434/v1") == "" and netguard.check_url("http://10.0.0.8/") == ""
    assert "may not call" in netguard.check_url("http://[::ffff:169.254.169.254]/")


def _settings_of(tmp_path: Path, production: bool, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "PARLEY_", "DJANGO_"))}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PARLEY_VAR_DIR=str(tmp_path), **env)
    if production:
        base.update(
            DATABASE_URL="postgres://parley@127.0.0.1:9/parley",
            REDIS_URL="redis://127.0.0.1:9/0",
            SECRET_KEY="pK3v9-Xq2LmZ8rT1wY6nB4cF0hJ7sD5gA_eU2iO9kP1lQ3zX8vC6bN4mR7tW0yE5",
            PARLEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )
    code = "from django.conf import settings; print(settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS)"
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.timeout(600)  # three fresh processes set Django up; slow on a busy machine
def test_the_defaults_of_each_shape_and_the_earlier_workflow_setting(tmp_path):
    production = _settings_of(tmp_path, True)
    assert "127.0.0.0/8" in production and "10.0.0.0/8" in production and "169.254.0.0/16" in production
    embedded = _settings_of(tmp_path, False)
    assert "169.254.0.0/16" in embedded and "127.0.0.0/8" not in embedded
    assert _settings_of(tmp_path, True, PARLEY_WORKFLOW_BLOCKED_NETWORKS="203.0.113.0/24") == "203.0.113.0/24"


def test_a_name_resolving_to_a_refused_address_is_never_connected_to(production_guard, fake):
    url = fake.url.replace("127.0.0.1", "localhost") + "/"
    with netguard.guarded_client() as client, pytest.raises(netguard.OutboundRefused, match="may not call"):
        client.get(url)

    async def call():
        async with netguard.guarded_async_client() as client:
            await client.get(url)

    with pytest.raises(netguard.OutboundRefused):
        asyncio.run(call())
    assert fake.requests == []
    production_guard.PARLEY_OUTBOUND_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"  # the operator allows it
    with netguard.guarded_client() as client:
        assert client.get(url).status_code == 200


def test_environment_proxies_are_not_used(production_guard, fake, monkeypatch):
    production_guard.PARLEY_OUTBOUND_ALLOWED_NETWORKS = "127.0.0.0/8"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a closed port: a proxied call would fail
    with netguard.guarded_client(timeout=5) as client:
        assert client.get(fake.url + "/").status_code == 200


@pytest.mark.django_db
def test_model_and_channel_forms_refuse_a_refused_address(production_guard):
    tenant = make_tenant("acme")
    model = make_model(tenant, endpoint="https://api.openai.com/v1")
    model.endpoint = "http://[::ffff:169.254.169.254]/v1"
    with pytest.raises(ValidationError) as refused:
        model.full_clean()
    assert "may not call" in str(refused.value.message_dict["endpoint"])
    channel = Channel(
        bot=make_bot(tenant),
        platform="telegram",
        key="acme-tg",
        credentials={"bot_token": "1:x"},
        api_base="http://0x7f.1:9",
    )
    with pytest.raises(ValidationError) as refused:
        channel.full_clean()
    assert "may not call" in str(refused.value.message_dict["api_base"])


@pytest.mark.django_db
def test_test_this_model_says_why_and_sends_nothing(production_guard, fake_openai):
    result = model_test(make_model(make_tenant("acme"), endpoint=fake_openai.url))
    assert not result.ok and result.message.startswith("Not called:") and "127.0.0.1" in result.message
    assert fake_openai.calls == 0


def test_a_model_call_to_a_refused_endpoint_fails_at_connect_time(production_guard, fake_openai):
    provider = provider_for(kind="openai", endpoint=fake_openai.url.replace("127.0.0.1", "localhost"), api_key="sk-1")
    try:
        with pytest.raises(ProviderError, match="may not call"):
            provider.complete([{"role": "user", "content": "hi"}], model="m", max_tokens=8, timeout=5)
    finally:
        provider.close()
    assert fake_openai.calls == 0


@pytest.mark.django_db
def test_send_a_test_message_says_why_and_sends_nothing(production_guard, fake):
    channel = make_channel(
        make_bot(make_tenant("acme")),
        platform="telegram",
        key="acme-tg",
        credentials={"bot_token": "1:x"},
        api_base=fake.url,
    )
    ok, said = channel_send_test(channel=channel, chat_id="42")
    assert not ok and said.startswith("Not sent:") and "may not call" in said
    assert fake.requests == []


def test_a_platform_api_call_to_a_refused_base_fails_for_good(production_guard, fake):
    with pytest.raises(PlatformError) as refused:
        platform_http.request("feishu", "POST", fake.url.replace("127.0.0.1", "localhost") + "/", json={})
    assert refused.value.permanent and "may not call" in str(refused.value)
    assert fake.requests == []
