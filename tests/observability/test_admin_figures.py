"""The figures operators watch, after real traffic: /metrics and the admin dashboard (headless
Chromium) tell the same story. ``PARLEY_SCREENSHOTS=1`` refreshes docs/img/observability-admin.png,
the picture in docs/observability.md (Grafana itself cannot run in the build environment)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apps.bots.models import BotFallback
from tests.factories import PASSWORD, make_bot, make_channel, make_knowledge, make_model, make_tenant, make_user
from tests.fakes.llm import FakeOpenAI

from .conftest import SECRET, post_message, scrape, value

os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(240),
]


def test_metrics_and_admin_dashboard_after_traffic(live_server, client, testim_setup, monkeypatch, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    acme, helpdesk = testim_setup["tenant"], testim_setup["bot"]
    globex = make_tenant("globex")
    sales = make_bot(globex, "sales")
    make_knowledge(sales, "Do you ship abroad?", "Yes, to 30 countries.")
    make_channel(
        sales,
        platform="testim",
        key="globex-testim",
        credentials={"secret": SECRET},
        api_base=testim_setup["server"].url,
    )
    make_user("ops", superuser=True)

    with FakeOpenAI() as primary_api, FakeOpenAI() as backup_api:
        # The fakes answer at once; the timeouts only have to hold on a busy CI machine.
        primary = make_model(acme, "gpt-main", endpoint=primary_api.url, api_key="sk-obs-1", timeout_s="10")
        backup = make_model(acme, "gpt-backup", endpoint=backup_api.url, api_key="sk-obs-2", timeout_s="10")
        helpdesk.model = primary
        helpdesk.save()
        BotFallback.objects.create(bot=helpdesk, model=backup, position=1)
        primary_api.set(text="Happy to help with that.", tokens_in=20, tokens_out=6)
        backup_api.set(text="Backup model here: happy to help.", tokens_in=20, tokens_out=7)

        before = scrape(client)
        n = 0

        def send(key: str, text: str) -> None:
            nonlocal n
            n += 1  # one sender per message: each is its own conversation
            resp = post_message(client, key, msg_id=f"d-{n}", text=text, user=f"u-{n}", chat=f"c-{n}")
            assert resp.status_code == 200

        for _ in range(3):
            send("acme-testim", "What are your opening hours?")
        for question in ("How do I reset my password?", "Where is my invoice?", "Can I change my plan?"):
            send("acme-testim", question)
        primary_api.then(status=400, error_message="bad request")
        send("acme-testim", "Why was my card declined?")
        for _ in range(2):
            send("globex-testim", "Do you ship abroad?")
        after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("parley_inbound_messages_total", platform="testim", outcome="accepted") == 9
    assert delta("ai_response_duration_seconds_count", tenant="acme", bot="helpdesk", platform="testim") == 7
    assert delta("ai_response_duration_seconds_count", tenant="globex", bot="sales", platform="testim") == 2
    main = {"tenant": "acme", "model": "gpt-main", "provider": "openai"}
    assert delta("parley_model_calls_total", outcome="ok", **main) == 3
    assert delta("parley_model_calls_total", outcome="error", **main) == 1
    assert delta("parley_fallbacks_total", tenant="acme", bot="helpdesk") == 1
    assert delta("parley_answer_cache_total", tenant="acme", bot="helpdesk", kind="knowledge", result="hit") == 3
    assert delta("parley_answer_cache_total", tenant="globex", bot="sales", kind="knowledge", result="hit") == 2

    # The admin dashboard shows the same traffic per tenant, with the rates /metrics gives.
    answers = delta("ai_response_duration_seconds_count", tenant="acme", bot="helpdesk", platform="testim")
    model_answers = sum(
        delta("parley_model_calls_total", tenant="acme", model=m, provider="openai", outcome="ok")
        for m in ("gpt-main", "gpt-backup")
    )
    knowledge_hits = delta("parley_answer_cache_total", tenant="acme", bot="helpdesk", kind="knowledge", result="hit")
    fallbacks = delta("parley_fallbacks_total", tenant="acme", bot="helpdesk")
    cache_rate = f"{100 * knowledge_hits / answers:.1f}%"  # 3 of 7
    fallback_rate = f"{100 * fallbacks / model_answers:.1f}%"  # 1 of 4
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API holds a loop here
    expect.set_options(timeout=20_000)  # (5 s by default) a busy CI machine renders slowly
    shots = DOCS_IMG if os.environ.get("PARLEY_SCREENSHOTS") == "1" else tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{live_server.url}/admin/login/")
            page.get_by_label("Username").fill("ops")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            board = page.locator(".parley-dashboard")
            expect(board).to_be_visible()
            expect(board).to_contain_text("ACME Corp")
            expect(board).to_contain_text("GLOBEX Corp")
            acme_box = board.locator('.tenant[data-tenant="acme"] table.figures')
            expect(acme_box).to_contain_text(cache_rate)
            expect(acme_box).to_contain_text(fallback_rate)
            board.screenshot(path=str(shots / "observability-admin.png"))
        finally:
            browser.close()
