"""In a real browser (Debian's headless Chromium driven by Playwright, Parley on pytest-django's live
server on 127.0.0.1): an end user rates an answer on a phone-sized screen, and a reviewer opens the
transcript in the admin. ``PARLEY_SCREENSHOTS=1`` refreshes the pictures in docs/img/."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.conversations.feedback_links import feedback_token
from apps.conversations.models import Feedback, Message
from apps.conversations.review import record_feedback
from tests.factories import PASSWORD
from tests.review.conftest import make_turn

# pytest-django's live server listens where this says (its default, "localhost", may be ::1).
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

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
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(180),
]


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: docs/img/ when refreshing them, else a temporary folder."""
    return DOCS_IMG if os.environ.get("PARLEY_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread, which Django takes for async code;
    # the test's own ORM calls are plain blocking calls between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_end_user_rates_an_answer_on_a_phone(live_server, world, browser, shots):
    from playwright.sync_api import expect

    assert live_server.url.startswith("http://127.0.0.1:")
    answer = world["tenant-a"]["answer"]
    Message.objects.filter(pk=answer.pk).update(
        text="To reset your password, open **Settings → Security** and choose *Reset password*. "
        "We will send a link to l***@example.com."
    )
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/feedback/{feedback_token(answer)}/")
    expect(page.get_by_role("heading", name="Rate this answer")).to_be_visible()
    # Fits the phone: nothing runs off the side, and the stars are big enough to tap.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    star = page.locator('label[for="star4"]')
    box = star.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    star.tap()
    expect(page.locator("#star4")).to_be_checked()
    page.get_by_label("Anything to add? (optional)").fill("Clear, but the menu is called Account on my phone.")
    page.screenshot(path=str(shots / "feedback-page.png"), full_page=True)
    page.get_by_role("button", name="Send rating").tap()
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.get_by_test_id("your-rating")).to_have_text("Your rating: 4 of 5")
    page.screenshot(path=str(shots / "feedback-thanks.png"), full_page=True)
    fb = Feedback.objects.get()
    assert (fb.message_id, fb.rating, fb.source) == (answer.pk, 4, "page")
    assert fb.comment.startswith("Clear, but")

    # Changing the rating while the link is valid.
    page.get_by_role("link", name="Change my rating").tap()
    expect(page.get_by_test_id("current")).to_contain_text("4 of 5")
    page.locator('label[for="star5"]').tap()
    page.get_by_role("button", name="Send rating").tap()
    expect(page.get_by_test_id("your-rating")).to_have_text("Your rating: 5 of 5")
    fb.refresh_from_db()
    assert fb.rating == 5
    context.close()


def test_reviewer_opens_a_transcript_in_the_admin(live_server, world, browser, shots):
    from playwright.sync_api import expect

    a = world["tenant-a"]
    conv = a["conv"]
    now = timezone.now()
    _, slow = make_turn(
        conv,
        "And where do I change the e-mail address on my account?",
        "Open **Profile → Contact** and edit the address; we send a confirmation mail.",
        at=now + timedelta(seconds=1),
        response_ms=4100,
        fallback_used=True,
        model_name="backup-model",
        attempts=[
            {"model": "primary", "provider": "openai", "outcome": "timeout", "latency_ms": 3000, "error": "timed out"},
            {"model": "backup", "provider": "anthropic", "outcome": "ok", "latency_ms": 980, "error": ""},
        ],
    )
    record_feedback(message=a["answer"], rating=5, comment="Quick, thanks!", source="page")
    record_feedback(message=slow, rating=2, source="button")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("reviewer-a")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".parley-dashboard")).to_be_visible()
    expect(page.locator("svg.parley-chart")).to_have_count(6)
    page.screenshot(path=str(shots / "review-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/conversations/conversation/?rating=low")
    page.get_by_role("link", name=str(conv.pk), exact=True).click()
    expect(page.locator(".turn.assistant")).to_have_count(2)
    expect(page.locator(".turn.user").first).to_contain_text("138")
    assert "13812345678" not in page.content()  # masked for a reviewer
    expect(page.get_by_test_id("rating").first).to_have_text("★★★★★")
    expect(page.locator(".turn.assistant").nth(1)).to_contain_text("fallback")

    # Flag the slow answer and write the correct one (the one write a reviewer may do).
    slow_turn = page.locator(f"#m{slow.pk}")
    slow_turn.get_by_text("Flag / correct").click()
    slow_turn.get_by_label("Flag this answer").check()
    slow_turn.get_by_label("Correct answer").fill("Open Settings → Account → E-mail, then confirm the link we send.")
    slow_turn.get_by_role("button", name="Save review").click()
    expect(page.locator(".messagelist")).to_contain_text("saved")
    expect(page.locator(f"#m{slow.pk}")).to_have_class("turn assistant flagged")
    page.locator(f"#m{slow.pk} details.attempts summary").click()
    page.screenshot(path=str(shots / "review-transcript.png"), full_page=True)
    slow.refresh_from_db()
    assert slow.flagged and slow.correction.startswith("Open Settings")
    context.close()
