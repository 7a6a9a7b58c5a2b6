"""The first hour in a real browser, in English and in Chinese, on a laptop (1366 px) and a phone
(390 px): setup → getting started → the web chat answers (a fake OpenAI-compatible model on
127.0.0.1) → the step ticks itself off → the admin's list pages. Every page is checked for sideways
overflow and hidden changelist columns, and in Chinese for text still in English
(``pagechecks``). Headless Debian Chromium driven by Playwright; a real Parley (uvicorn on a thread).

``CONSOLE_SCREENSHOTS=docs/img`` saves the pages the docs show (docs/console.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.cache import cache

from tests.fakes.llm import FakeOpenAI
from tests.platforms.web.live import LiveParley

from .pagechecks import overflow_problems, translation_problems

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
WIDTHS = (1366, 390)
#: Browser language per console language (what Accept-Language says).
LOCALES = {"en": "en-US", "zh-hans": "zh-CN"}
#: What the walk types in, per language: a Chinese admin names things in Chinese.
NAMES = {
    "en": {
        "tenant": "Acme Trading",
        "bot": "Helpdesk",
        "question": "When are you open?",
        "answer": "We are open **Monday to Friday**, 9 to 5.",
        "bold": "Monday to Friday",
    },
    "zh-hans": {
        "tenant": "示例贸易",
        "bot": "小助手",
        "question": "你们几点营业？",
        "answer": "我们**周一至周五**营业，早九点到晚五点。",
        "bold": "周一至周五",
    },
}
WIDGET_PLACEHOLDER = {"en": "Type a message…", "zh-hans": "输入消息…"}
RATE_LINK = {"en": "Rate and comment", "zh-hans": "评分并留言"}
LIST_PAGES = ("bots/bot/", "im_channels/channel/", "llm/modelconfig/", "conversations/conversation/")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(180),
]


def _check(page, lang: str, where: str) -> list[str]:
    problems = overflow_problems(page)
    if lang != "en":
        problems += translation_problems(page)
    return [f"{where} @ {page.viewport_size['width']}px: {p}" for p in problems]


def _shoot(page, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_first_hour_walk(lang, settings):
    from playwright.sync_api import expect, sync_playwright

    from apps.setup.services import setup_token

    expect.set_options(timeout=20_000)  # a busy CI machine renders slowly
    cache.clear()  # "setup done" is cached; this database starts empty
    settings.TASKS_MODE = "inprocess"
    names = NAMES[lang]
    parley = LiveParley()
    settings.PUBLIC_BASE_URL = parley.url
    problems: list[str] = []
    with FakeOpenAI() as fake:
        fake.set(text=names["answer"])
        parley.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                context = browser.new_context(locale=LOCALES[lang], viewport={"width": 1366, "height": 860})
                page = context.new_page()

                # 1. First-run setup, with an OpenAI-compatible model (the fake one).
                page.goto(parley.url + "/setup/")
                problems += _check(page, lang, "setup")
                page.fill("[name=setup_token]", setup_token())
                page.fill("[name=username]", "owner")
                page.fill("[name=password1]", "a-long-pass-phrase-1")
                page.fill("[name=password2]", "a-long-pass-phrase-1")
                page.fill("[name=tenant_name]", names["tenant"])
                page.fill("[name=tenant_slug]", "acme")
                page.check("input[name=provider][value=openai]")
                page.fill("[name=endpoint]", fake.url)
                page.fill("[name=model_name]", "fake-model")
                page.fill("[name=bot_name]", names["bot"])
                page.fill("[name=channel_key]", "acme-web")
                page.locator("form [type=submit]").last.click()

                # 2. Setup ends on the getting-started page: nothing done yet but the web chat's link.
                expect(page).to_have_url(parley.url + "/admin/start/getting-started/")
                expect(page.locator("[data-step=webchat]")).to_have_attribute("data-done", "0")
                link = page.get_by_test_id("webchat-link")
                assert link.get_attribute("href") == parley.url + "/chat/acme-web/"
                assert parley.url + "/webhooks/feishu/" in page.locator("[data-platform=feishu]").text_content()
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 860})
                    problems += _check(page, lang, "getting started")
                page.set_viewport_size({"width": 1366, "height": 860})
                _shoot(page, f"console-getting-started-{lang}.png")

                # 3. The web chat answers from the model.
                with context.expect_page() as opened:
                    link.click()
                chat = opened.value
                chat.locator("textarea").fill(names["question"])
                chat.locator("textarea").press("Enter")
                answer = chat.locator(".msg.bot:not(.streaming)").last
                expect(answer.locator("strong")).to_have_text(names["bold"], timeout=30_000)
                # The widget speaks the visitor's language, and links the answer's rating page.
                assert chat.locator("textarea").get_attribute("placeholder") == WIDGET_PLACEHOLDER[lang]
                rate = answer.locator("a.rate-page")
                expect(rate).to_have_text(RATE_LINK[lang])
                assert rate.get_attribute("href").startswith(parley.url + "/feedback/")
                widget_sides = (chat.locator(".msg.user").last.bounding_box(), answer.bounding_box())
                chat.close()

                # 4. The step ticked itself off.
                page.reload()
                expect(page.locator("[data-step=webchat]")).to_have_attribute("data-done", "1")

                # 5. The home page and the list pages fit, and speak the admin's language.
                page.goto(parley.url + "/admin/")
                expect(page.get_by_test_id("start-card")).to_be_visible()
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 860})
                    problems += _check(page, lang, "dashboard")
                page.set_viewport_size({"width": 1366, "height": 860})
                _shoot(page, f"console-dashboard-{lang}.png")
                for path in LIST_PAGES:
                    page.goto(f"{parley.url}/admin/{path}")
                    expect(page.locator("#result_list tbody tr").first).to_be_visible()
                    for width in WIDTHS:
                        page.set_viewport_size({"width": width, "height": 860})
                        problems += _check(page, lang, path)
                        if path.startswith("conversations/") and width == 390 and lang == "en":
                            _shoot(page, "console-conversations-phone-en.png")
                    page.set_viewport_size({"width": 1366, "height": 860})
                page.goto(f"{parley.url}/admin/conversations/conversation/")
                page.locator("#result_list tbody tr a").first.click()
                expect(page.locator(".chat .turn.assistant strong")).to_have_text(names["bold"])
                # The transcript puts the user and the bot on the same sides as the widget did.
                user_box = page.locator(".chat .turn.user .bubble").first.bounding_box()
                bot_box = page.locator(".chat .turn.assistant .bubble").first.bounding_box()
                assert widget_sides[0]["x"] > widget_sides[1]["x"]  # the widget: user right, bot left
                assert user_box["x"] > bot_box["x"]
                problems += _check(page, lang, "transcript")
                _shoot(page, f"console-transcript-{lang}.png")
                browser.close()
        finally:
            parley.stop()
    assert not problems, "\n".join(problems)
