"""Human handoff in a real browser: headless Chromium (Debian's, driven by Playwright) on a running
Parley (uvicorn + config.asgi on a thread, tasks on the in-process pool as in the embedded default).
A web-chat visitor asks for a person; the agent's inbox shows it without a reload; the agent takes
over; the visitor's next message appears live in the agent's transcript; the agent's reply reaches
the visitor's chat; handing back lets the bot answer again.

``HANDOFF_SCREENSHOTS=docs/img`` saves the pages docs/handoff.md shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.cache import cache

from tests.factories import PASSWORD, make_bot, make_channel, make_model, make_tenant, make_user
from tests.fakes.llm import FakeOpenAI
from tests.platforms.web.live import LiveParley

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(240),
]


def _shoot(page, name: str) -> None:
    folder = os.environ.get("HANDOFF_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def test_agent_inbox_updates_live_and_the_reply_reaches_the_visitor(settings):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a busy CI machine renders slowly
    cache.clear()
    settings.TASKS_MODE = "inprocess"
    with FakeOpenAI() as fake:
        fake.set(text="I'm the bot again: how can I help?")
        fake.then(text="Sorry to hear that! Could you tell me your order number?")  # the first answer
        fake.then(text="The user's parcel never arrived; they want a person to trace it.")  # the summary
        tenant = make_tenant("acme", name="Acme Trading")
        bot = make_bot(tenant, name="Helpdesk", model=make_model(tenant, endpoint=fake.url, timeout_s=20))
        make_channel(bot, platform="web", key="acme-web")
        make_user("root", superuser=True)
        make_user("ann", tenant=tenant, role="agent")
        parley = LiveParley().start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                try:
                    agent = browser.new_context(viewport={"width": 1366, "height": 860}).new_page()
                    agent.goto(parley.url + "/admin/login/?next=/admin/inbox/")
                    agent.fill("[name=username]", "ann")
                    agent.fill("[name=password]", PASSWORD)
                    agent.locator("[name=password]").press("Enter")  # sign in (the page has language buttons too)
                    agent.goto(parley.url + "/admin/inbox/")
                    expect(agent.get_by_test_id("live-state")).to_have_attribute("data-live", "1")
                    expect(agent.get_by_test_id("queue-empty")).to_be_visible()

                    visitor = browser.new_context(viewport={"width": 420, "height": 760}).new_page()
                    visitor.goto(parley.url + "/chat/acme-web/")
                    visitor.locator("textarea").fill("My parcel never arrived.")
                    visitor.locator("textarea").press("Enter")
                    expect(visitor.locator(".msg.bot:not(.streaming)").last).to_contain_text("order number")
                    visitor.locator("textarea").fill("/human")
                    visitor.locator("textarea").press("Enter")
                    expect(visitor.locator(".msg.bot").last).to_contain_text("asked a colleague to take over")

                    # The queue fills in without a reload.
                    item = agent.locator("[data-testid=queue] li").first
                    expect(item).to_have_attribute("data-state", "waiting")
                    expect(item.get_by_test_id("summary")).to_have_text(
                        "The user's parcel never arrived; they want a person to trace it."
                    )
                    item.click()
                    agent.get_by_test_id("claim").click()
                    expect(agent.get_by_test_id("holder")).to_have_text("You are handling it")

                    # What the visitor writes now appears live for the agent; the bot says nothing.
                    bots_before = visitor.locator(".msg.bot").count()
                    visitor.locator("textarea").fill("Order 1234, it should have come on Monday.")
                    visitor.locator("textarea").press("Enter")
                    expect(agent.locator("[data-testid=transcript] li[data-by=user]").last).to_contain_text(
                        "Order 1234"
                    )
                    agent.get_by_test_id("reply-text").fill("Hi, I'm Ann. I've found order 1234: it leaves today.")
                    _shoot(agent, "handoff-inbox.png")
                    agent.get_by_test_id("send").click()
                    expect(visitor.locator(".msg.bot").last).to_contain_text("it leaves today")
                    assert visitor.locator(".msg.bot").count() == bots_before + 1  # the agent's, not the bot's
                    expect(agent.locator("[data-testid=transcript] li[data-by=agent]").last).to_contain_text("Ann")
                    _shoot(visitor, "handoff-visitor.png")

                    # Hand back: the visitor is told, and the bot answers again.
                    agent.get_by_test_id("resolve").click()
                    expect(visitor.locator(".msg.bot").last).to_contain_text("finished helping you")
                    expect(agent.get_by_test_id("queue-empty")).to_be_visible()
                    visitor.locator("textarea").fill("Thanks! One more question")
                    visitor.locator("textarea").press("Enter")
                    expect(visitor.locator(".msg.bot:not(.streaming)")).to_have_count(bots_before + 3)
                    expect(visitor.locator(".msg.bot").last).to_contain_text("I'm the bot again")

                    # The handoff's times, on the dashboard.
                    agent.goto(parley.url + "/admin/")
                    card = agent.get_by_test_id("handoff-card")
                    expect(card.get_by_test_id("handoff-agents")).to_contain_text("ann")
                    folder = os.environ.get("HANDOFF_SCREENSHOTS")
                    if folder:
                        card.screenshot(path=str(Path(folder) / "handoff-dashboard.png"))
                finally:
                    browser.close()
        finally:
            parley.stop()
