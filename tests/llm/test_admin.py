"""Model admin: the "test this model" action, the breaker column, the usage page — per tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.bots import routing
from apps.core.models import AuditLog
from apps.llm import breaker
from tests.factories import PASSWORD, make_bot, make_model, make_tenant, make_user
from tests.llm.test_usage import store

CHANGELIST = "admin:llm_modelconfig_changelist"


@pytest.fixture(autouse=True)
def _setup_done(db):
    make_user("root", superuser=True)  # first-run setup is over: the admin is open


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_test_action_shows_latency_or_the_providers_error(client, tenant, fake_openai, fake_openai_2):
    good = make_model(tenant, "good", endpoint=fake_openai.url)
    bad = make_model(tenant, "bad", endpoint=fake_openai_2.url, api_key="sk-bad-0000")
    fake_openai_2.set(status=401, error_message="Invalid API key: sk-bad-0000")
    login(client, make_user("alice", tenant=tenant))
    resp = client.post(
        reverse(CHANGELIST), {"action": "test_models", "_selected_action": [good.pk, bad.pk]}, follow=True
    )
    assert resp.status_code == 200
    texts = [str(m) for m in resp.context["messages"]]
    assert any(t.startswith("good: OK — answered in") for t in texts)
    assert any(t.startswith("bad: HTTP 401 (the provider rejected the API key)") for t in texts)
    assert not any("sk-bad-0000" in t for t in texts)
    assert AuditLog.objects.filter(action="model.test").count() == 2


def test_test_action_cannot_reach_another_tenants_model(client, tenant, fake_openai):
    theirs = make_model(make_tenant("globex"), "theirs", endpoint=fake_openai.url)
    login(client, make_user("alice", tenant=tenant))
    client.post(reverse(CHANGELIST), {"action": "test_models", "_selected_action": [theirs.pk]}, follow=True)
    assert fake_openai.calls == 0


def test_breaker_state_column(settings, client, tenant, bot, fake_openai):
    settings.LLM_BREAKER_FAILURES = 1
    cfg = make_model(tenant, "flaky", endpoint=fake_openai.url)
    bot.model = cfg
    bot.save()
    login(client, make_user("alice", tenant=tenant))
    assert "closed" in client.get(reverse(CHANGELIST)).content.decode()
    fake_openai.set(status=500)
    routing.ask(bot=bot, messages=[{"role": "user", "content": "hi"}])
    assert breaker.state_of(cfg).state == breaker.OPEN
    assert "open — skipped, next try in" in client.get(reverse(CHANGELIST)).content.decode()


def test_usage_page_lists_only_the_users_tenants(client, tenant, bot, fake_openai):
    other = make_tenant("globex")
    their_bot = make_bot(other, "theirbot", model=make_model(other, "m2", endpoint=fake_openai.url))
    bot.model = make_model(tenant, "m1", endpoint=fake_openai.url, cost_input_per_1k="1")
    bot.save()
    fake_openai.set(tokens_in=1000, tokens_out=0)
    store(bot, routing.ask(bot=bot, messages=[{"role": "user", "content": "hi"}]))
    store(their_bot, routing.ask(bot=their_bot, messages=[{"role": "user", "content": "hi"}]))
    login(client, make_user("alice", tenant=tenant))
    resp = client.get(reverse("admin:llm_modelconfig_usage"))
    page = resp.content.decode()
    assert resp.status_code == 200 and "m1" in page and "1.0000" in page
    assert "theirbot" not in page and "globex" not in page
    reviewer = make_user("rita", tenant=make_tenant("third"), role="reviewer")
    client.logout()
    login(client, reviewer)
    assert client.get(reverse("admin:llm_modelconfig_usage")).status_code == 403
