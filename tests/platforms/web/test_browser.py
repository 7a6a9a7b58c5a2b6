"""The widget in a real browser: headless Chromium (Debian's, driven by Playwright) opens a page on
another origin that embeds /widget.js from a running Parley (uvicorn + config.asgi on a thread, the
test database, tasks on the in-process pool like the embedded default), talks to a fake
OpenAI-compatible model over real HTTP, and sees what a visitor would."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tests.factories import make_bot, make_channel, make_model, make_tenant
from tests.fakes.server import FakeServer

from .live import LiveParley

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER = (
    "Our **opening hours** are:\n\n"
    "- Monday to Friday: 9 to 5\n"
    "- Saturday: 10 to 2\n\n"
    'See <img src=x onerror="window.__pwned=1"> and [this](javascript:window.__pwned=2) '
    "or [the site](https://example.com/hours)."
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(240),
]


@pytest.fixture
def fake_model():
    """The llm engineer's FakeOpenAI when present; otherwise a minimal SSE chat-completions route."""
    try:
        from tests.fakes.llm import FakeOpenAI
    except ImportError:  # pragma: no cover - fallback for a tree without tests/fakes/llm.py
        FakeOpenAI = None
    if FakeOpenAI is not None:
        with FakeOpenAI() as fake:
            # The typing indicator shows until the first token: long enough to be seen on a busy machine.
            fake.set(text=ANSWER, token_delay=0.12, first_token_delay=2.5)
            yield fake.url
        return
    with FakeServer() as srv:

        def completions(req):
            words = ANSWER.split(" ")
            pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]

            def events():
                for piece in pieces:
                    time.sleep(0.12)
                    delta = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    yield f"data: {json.dumps(delta)}\n\n"
                yield "data: [DONE]\n\n"

            if req.json().get("stream"):
                return (200, events())
            return (200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]})

        srv.route("POST", "/v1/chat/completions", completions)
        yield srv.url + "/v1"


def _router_streams(bot) -> bool:
    """Whether the model router passes text on as it arrives (pieces, not the whole answer once)."""
    from apps.bots import routing

    pieces: list[str] = []
    routing.ask(bot=bot, messages=[{"role": "user", "content": "probe"}], language="en", on_token=pieces.append)
    return len(pieces) > 1


def test_visitor_chats_with_streaming_safe_markdown_feedback_history_and_reconnect(settings, fake_model):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # (5 s by default) a busy CI machine renders slowly
    settings.TASKS_MODE = "inprocess"
    tenant = make_tenant("acme")
    model = make_model(tenant, endpoint=fake_model, model="fake-model", timeout_s=20)
    bot = make_bot(tenant, name="Helpdesk", model=model, greeting="Hello! How can I help?")
    streams = _router_streams(bot)

    parley = LiveParley()
    with FakeServer() as site:
        channel = make_channel(bot, platform="web", key="acme-web", allowed_origins=site.url)
        page_html = (
            "<!doctype html><html><head><title>Shop</title></head><body><h1>Shop</h1>"
            f'<script src="{parley.url}/widget.js" data-channel="{channel.key}" data-title="Helpdesk" async></script>'
            "</body></html>"
        )
        site.route("GET", "/", lambda req: (200, page_html))
        parley.start()
        frames: list[dict] = []
        lock = threading.Lock()

        def watch(ws):
            def on_frame(payload):
                if isinstance(payload, str):
                    with lock:
                        frames.append(json.loads(payload))

            ws.on("framereceived", on_frame)

        def seen(kind: str) -> list[dict]:
            with lock:
                return [f for f in frames if f.get("type") == kind]

        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
                page = browser.new_page()
                page.on("websocket", watch)
                page.goto(site.url + "/")

                page.get_by_role("button", name="Open chat").click()
                expect(page.locator(".msg.bot").first).to_have_text("Hello! How can I help?")
                page.get_by_label("Message").fill("When are you open?")
                page.get_by_label("Message").press("Enter")
                expect(page.locator(".msg.user")).to_have_text("When are you open?")
                expect(page.get_by_label("The assistant is typing")).to_be_visible()  # the model has not begun

                if streams:
                    # Part of the answer is on screen while the model is still writing.
                    streaming = page.locator(".msg.bot.streaming")
                    expect(streaming).to_contain_text("opening hours", timeout=30_000)
                    partial = streaming.inner_text()
                final = page.locator(".msg.bot:not(.streaming)").last
                expect(final.locator(".rate button")).to_have_count(2, timeout=30_000)
                if streams:
                    # What was on screen mid-stream was a part of the answer, not all of it.
                    assert 0 < len(partial.strip()) < len(final.inner_text().strip())
                if streams:
                    assert len(seen("token")) > 1

                # Markdown rendered as elements; nothing from the model runs or loads.
                expect(final.locator("strong")).to_have_text("opening hours")
                expect(final.locator("li")).to_have_count(2)
                expect(final).to_contain_text('<img src=x onerror="window.__pwned=1">')
                assert final.locator("img").count() == 0
                assert final.locator(".body a").evaluate_all("as => as.map(a => a.href)") == [
                    "https://example.com/hours"
                ]
                # Beside the thumbs, the answer's rating page (stars and a comment).
                assert "/feedback/" in final.locator("a.rate-page").get_attribute("href")
                assert page.evaluate("window.__pwned") is None

                thumbs_up = final.get_by_role("button", name="Helpful", exact=True)
                thumbs_up.click()
                expect(thumbs_up).to_have_attribute("aria-pressed", "true")
                deadline = time.monotonic() + 15
                while not [f for f in seen("ack") if f.get("rating") == "up"] and time.monotonic() < deadline:
                    page.wait_for_timeout(100)

                # A page load keeps the conversation: history comes back, with the rating.
                page.reload()
                expect(page.locator(".msg.user")).to_have_text("When are you open?", timeout=15_000)
                again = page.locator(".msg.bot").last
                expect(again.locator("strong")).to_have_text("opening hours")
                expect(again.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
                    "aria-pressed", "true"
                )

                # The server goes away and comes back (a deploy): the widget reconnects by itself.
                parley.restart()
                page.get_by_label("Message").fill("And on Sunday?")
                page.get_by_label("Message").press("Enter")
                expect(page.locator(".msg.bot:not(.streaming) .rate")).to_have_count(2, timeout=45_000)
                expect(page.locator(".msg.user")).to_have_count(2)
                if os.environ.get("WEBCHAT_SCREENSHOT"):  # to look at the widget by eye
                    page.screenshot(path=os.environ["WEBCHAT_SCREENSHOT"])
                browser.close()
        finally:
            parley.stop()

    from apps.conversations.models import Feedback, InboundMessage

    assert InboundMessage.objects.filter(channel=channel).count() == 2
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.source) == (5, "button")
