"""The public rating page: signed, expiring links bound to one answer; ratings land on that answer."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.urls import reverse

from apps.conversations.feedback_links import SALT, feedback_token, feedback_url
from apps.conversations.models import Feedback
from apps.conversations.review import ReviewError, record_feedback, thumb_rating
from tests.review.conftest import EMAIL, PHONE

pytestmark = pytest.mark.django_db


def page(token):
    return reverse("feedback:page", kwargs={"token": token})


@pytest.fixture
def answer(world):
    return world["tenant-a"]["answer"]


def test_feedback_url_points_at_the_page(answer, settings):
    settings.PUBLIC_BASE_URL = "https://parley.example.com"
    url = feedback_url(answer)
    assert url.startswith("https://parley.example.com/feedback/")
    assert url.endswith(page(feedback_token(answer)))


def test_valid_link_shows_the_answer_masked_and_a_star_form(client, answer):
    resp = client.get(page(feedback_token(answer)))
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "Rate this answer" in html
    assert EMAIL not in html and "l***@example.com" in html  # the link may be forwarded
    assert html.count('name="rating"') == 5
    assert "csrfmiddlewaretoken" in html
    assert resp["Cache-Control"] == "no-store"
    assert resp["Referrer-Policy"] == "same-origin"


def test_rating_lands_on_the_linked_answer_and_can_be_changed(client, world, answer):
    token = feedback_token(answer)
    resp = client.post(page(token), {"rating": "2", "comment": "  Too vague  "})
    assert resp.status_code == 302
    assert resp.url == reverse("feedback:thanks", kwargs={"token": token})
    fb = Feedback.objects.get()
    assert (fb.message_id, fb.rating, fb.comment, fb.source) == (answer.pk, 2, "Too vague", "page")
    thanks = client.get(resp.url).content.decode()
    assert "Thank you!" in thanks and "2 of 5" in thanks

    again = client.get(page(token)).content.decode()
    assert "You rated this answer 2 of 5" in again
    assert 'value="2" checked' in again and "Too vague" in again
    client.post(page(token), {"rating": "5", "comment": ""})
    fb.refresh_from_db()
    assert (fb.rating, fb.comment) == (5, "")
    assert Feedback.objects.count() == 1
    # The other tenant's answer got nothing.
    assert not Feedback.objects.filter(message=world["tenant-b"]["answer"]).exists()


@pytest.mark.parametrize("bad", [{"rating": "0"}, {"rating": "6"}, {"rating": "x"}, {}])
def test_rating_out_of_range_is_refused(client, answer, bad):
    resp = client.post(page(feedback_token(answer)), bad)
    assert resp.status_code == 400
    assert "Please choose 1 to 5 stars." in resp.content.decode()
    assert not Feedback.objects.exists()


def test_tampered_token_gets_a_clear_400(client, answer):
    token = feedback_token(answer)
    value, _, sig = token.rpartition(":")
    other_id = str(answer.pk + 1)
    forged = f"{other_id}{value[len(str(answer.pk)) :]}:{sig}"
    for bad in (forged, token[:-2] + ("aa" if not token.endswith("aa") else "bb"), "garbage", "a:b:c"):
        resp = client.get(page(bad))
        assert resp.status_code == 400, bad
        assert "This link does not work" in resp.content.decode()
        assert client.post(page(bad), {"rating": "5"}).status_code == 400
    assert not Feedback.objects.exists()


class _OldSigner(signing.TimestampSigner):
    def timestamp(self):
        return signing.b62_encode(int(time.time()) - 31 * 24 * 3600)


def test_expired_token_gets_410(client, answer):
    token = _OldSigner(salt=SALT).sign(f"{answer.pk}.{answer.conversation.tenant_id}")
    resp = client.get(page(token))
    assert resp.status_code == 410
    assert "This link has expired" in resp.content.decode()
    assert client.post(page(token), {"rating": "5"}).status_code == 410
    assert not Feedback.objects.exists()


def test_token_of_another_tenant_does_not_open_the_answer(client, world, answer):
    # Authentically signed, but the tenant in the token is not the answer's tenant.
    other_tenant = world["tenant-b"]["tenant"]
    token = signing.TimestampSigner(salt=SALT).sign(f"{answer.pk}.{other_tenant.pk}")
    assert client.get(page(token)).status_code == 400
    assert client.post(page(token), {"rating": "1"}).status_code == 400
    assert not Feedback.objects.exists()


def test_token_for_a_user_turn_is_refused(client, world):
    question = world["tenant-a"]["question"]
    assert client.get(page(feedback_token(question))).status_code == 400


def test_chinese_from_the_conversation_language(client, answer):
    answer.conversation.language = "zh"
    answer.conversation.save()
    resp = client.get(page(feedback_token(answer)), HTTP_ACCEPT_LANGUAGE="en-US")
    html = resp.content.decode()
    assert "评价这个回答" in html and '<html lang="zh-Hans">' in html


def test_chinese_from_accept_language_when_the_conversation_has_none(client, answer):
    answer.conversation.language = ""
    answer.conversation.save()
    html = client.get(page(feedback_token(answer)), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5").content
    assert "评价这个回答" in html.decode()
    bad = client.get(page("garbage"), HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()
    assert "链接无效" in bad


def test_posting_without_csrf_token_is_refused(answer):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    token = feedback_token(answer)
    assert strict.post(page(token), {"rating": "5"}).status_code == 403
    strict.get(page(token))  # sets the CSRF cookie, as a browser would
    csrf = strict.cookies["csrftoken"].value
    assert strict.post(page(token), {"rating": "5", "csrfmiddlewaretoken": csrf}).status_code == 302
    assert Feedback.objects.get().rating == 5


def test_submissions_are_rate_limited_per_token(client, answer):
    token = feedback_token(answer)
    codes = [client.post(page(token), {"rating": "4"}).status_code for _ in range(11)]
    assert codes[:10] == [302] * 10
    assert codes[10] == 429
    assert "Too many attempts" in client.post(page(token), {"rating": "4"}).content.decode()


def test_submissions_are_rate_limited_per_address(client, world, monkeypatch):
    from apps.conversations import feedback_views

    monkeypatch.setattr(feedback_views, "POST_LIMIT_PER_IP", (2, 600))
    a, b = world["tenant-a"]["answer"], world["tenant-b"]["answer"]
    assert client.post(page(feedback_token(a)), {"rating": "4"}).status_code == 302
    assert client.post(page(feedback_token(b)), {"rating": "4"}).status_code == 302
    assert client.post(page(feedback_token(a)), {"rating": "3"}).status_code == 429
    other = client.post(page(feedback_token(a)), {"rating": "3"}, REMOTE_ADDR="127.0.0.9")
    assert other.status_code == 302


def test_thanks_without_a_rating_goes_back_to_the_form(client, answer):
    token = feedback_token(answer)
    resp = client.get(reverse("feedback:thanks", kwargs={"token": token}))
    assert resp.status_code == 302 and resp.url == page(token)


# --- the service the web widget and platform buttons call -------------------------------------
def test_thumbs_land_in_the_same_table_and_keep_a_page_comment(answer):
    record_feedback(message=answer, rating=2, comment="wrong steps", source="page")
    fb = record_feedback(message=answer, rating=thumb_rating("up"), source="button")
    assert (fb.rating, fb.comment, fb.source) == (5, "wrong steps", "button")
    assert Feedback.objects.count() == 1


@pytest.mark.parametrize(
    "kwargs", [{"rating": 0}, {"rating": 6}, {"rating": "x"}, {"rating": 3, "source": "carrier-pigeon"}]
)
def test_record_feedback_refuses_bad_input(answer, kwargs):
    kwargs = {"source": "button", **kwargs}
    with pytest.raises(ReviewError):
        record_feedback(message=answer, **kwargs)


def test_record_feedback_refuses_user_turns(world):
    with pytest.raises(ReviewError):
        record_feedback(message=world["tenant-a"]["question"], rating=5, source="button")
    with pytest.raises(ReviewError):
        thumb_rating("sideways")


def test_question_text_with_pii_is_never_on_the_page(client, answer):
    assert PHONE not in client.get(page(feedback_token(answer))).content.decode()
