"""Friction: at 1366 px the conversations, channels and models lists overflowed and hid columns.
With long names and many rows, each list fits a 1366 px laptop screen: the page does not scroll
sideways and no column sits outside its box (headless Chromium, a real Parley)."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache

from apps.conversations.models import Conversation, Message
from tests.console.pagechecks import overflow_problems
from tests.console.test_walk import CHROMIUM, FLAGS
from tests.factories import PASSWORD, make_bot, make_channel, make_model, make_tenant, make_user
from tests.platforms.web.live import LiveParley

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}"),
    pytest.mark.timeout(180),
]
LONG = "Customer service for the northern region warehouses and partners"


def _rows() -> None:
    for n in range(2):  # two tenants: the tenant column shows too
        tenant = make_tenant(f"tenant-{n}", name=f"{LONG} {n}")
        model = make_model(tenant, f"primary-model-with-a-long-name-{n}", model="glm-4-turbo-long-model-name-2025")
        bot = make_bot(tenant, f"bot-{n}", name=f"{LONG} bot {n}", model=model)
        for platform in ("web", "feishu", "wecom", "dingtalk"):
            channel = make_channel(bot, platform=platform, key=f"{platform}-{n}-channel-key", name=f"{LONG} {platform}")
            conv = Conversation.objects.create(
                tenant=tenant, bot=bot, channel=channel, chat_id=f"chat-{platform}-{n}-" + "x" * 40,
                user_id="user-" + "y" * 50, user_name=LONG,
            )  # fmt: skip
            Message.objects.create(conversation=conv, role=Message.Role.USER, text=LONG * 3)


def test_list_pages_fit_1366_px(settings):
    from playwright.sync_api import sync_playwright

    cache.clear()
    make_user("root", superuser=True)
    _rows()
    parley = LiveParley().start()
    problems = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1366, "height": 860})
            page.goto(parley.url + "/admin/login/")
            page.fill("[name=username]", "root")
            page.fill("[name=password]", PASSWORD)
            page.locator("[name=password]").press("Enter")
            page.wait_for_url(parley.url + "/admin/**")
            for path in ("conversations/conversation/", "im_channels/channel/", "llm/modelconfig/"):
                page.goto(f"{parley.url}/admin/{path}")
                assert page.locator("#result_list tbody tr").count() >= 2, path
                problems += [f"{path}: {p}" for p in overflow_problems(page)]
            browser.close()
    finally:
        parley.stop()
    assert not problems, problems
