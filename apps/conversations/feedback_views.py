"""The public rating page of one answer: ``/feedback/<signed token>/`` (no login).

The token (``feedback_links``) binds the page to one answer of one tenant and expires. The page is
plain HTML with a form (works without JavaScript, CSRF-protected), rate-limited per token and per
client address through the shared cache, and speaks Chinese or English.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from apps.core.language import page_language
from apps.core.pii import mask_text

from .feedback_links import FeedbackLinkInvalid
from .models import Feedback, Message
from .ratings import POST_LIMIT_PER_IP, POST_LIMIT_PER_TOKEN, feedback_answer_load, rating_limited, token_key
from .review import COMMENT_MAX, ReviewError, record_feedback

# (limit, window seconds). Submissions are few per person (limits shared with the thumbs buttons
# in ``ratings``); the page views allow reloading.
VIEW_LIMIT_PER_IP = (120, 600)
ANSWER_PREVIEW_CHARS = 600

# Two languages and a dozen strings: a table here is easier to keep in step than gettext catalogues
# that would need compiling on every machine.
TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "title": "Rate this answer",
        "question": "How helpful was this answer?",
        "stars": ["Not helpful", "Poor", "OK", "Good", "Excellent"],
        "star_word": "stars",
        "comment": "Anything to add? (optional)",
        "submit": "Send rating",
        "current": "You rated this answer {n} of 5. You can change it.",
        "need_rating": "Please choose 1 to 5 stars.",
        "thanks_title": "Thank you!",
        "thanks_body": "Your rating helps us improve the answers.",
        "your_rating": "Your rating: {n} of 5",
        "change": "Change my rating",
        "invalid_title": "This link does not work",
        "invalid_body": "The link is incomplete or was changed. Please open the link from the answer again.",
        "expired_title": "This link has expired",
        "expired_body": "Answers can only be rated for a while after they were given.",
        "limited_title": "Too many attempts",
        "limited_body": "Please try again in a few minutes.",
        "answer_from": "Answer from {bot}",
    },
    "zh": {
        "title": "评价这个回答",
        "question": "这个回答对您有帮助吗？",
        "stars": ["没有帮助", "较差", "一般", "不错", "非常好"],
        "star_word": "星",
        "comment": "还有什么想说的吗？（可选）",
        "submit": "提交评价",
        "current": "您给这个回答打了 {n} 星（满分 5 星），可以修改。",
        "need_rating": "请选择 1 到 5 星。",
        "thanks_title": "谢谢！",
        "thanks_body": "您的评价能帮助我们改进回答。",
        "your_rating": "您的评价：{n} 星（满分 5 星）",
        "change": "修改评价",
        "invalid_title": "链接无效",
        "invalid_body": "链接不完整或已被修改，请重新打开回答中的链接。",
        "expired_title": "链接已过期",
        "expired_body": "回答发出一段时间后就不能再评价了。",
        "limited_title": "尝试次数过多",
        "limited_body": "请几分钟后再试。",
        "answer_from": "来自 {bot} 的回答",
    },
}
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(choices=[(n, str(n)) for n in range(1, 6)], coerce=int)
    comment = forms.CharField(required=False, max_length=COMMENT_MAX, strip=True)


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _respond(request: HttpRequest, template: str, lang: str, status: int = 200, **context: Any) -> HttpResponse:
    context.update(t=TEXT[lang], lang=HTML_LANG[lang])
    response = render(request, template, context, status=status)
    # The page is bound to a personal link: keep it out of shared caches and other sites' logs
    # ("same-origin", not "no-referrer": with no referrer at all browsers send "Origin: null" and
    # the CSRF check refuses the form).
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    response["Content-Language"] = HTML_LANG[lang]
    return response


def _problem(request: HttpRequest, lang: str, kind: str, status: int) -> HttpResponse:
    t = TEXT[lang]
    return _respond(request, "feedback/problem.html", lang, status, title=t[f"{kind}_title"], body=t[f"{kind}_body"])


def _load_answer(token: str) -> Message:
    """The answer a token is bound to. Raises ``FeedbackLinkInvalid`` for a bad, expired or
    mismatched token (another tenant's, a deleted answer, a user turn)."""
    return feedback_answer_load(token)


def _existing(message: Message) -> Feedback | None:
    try:
        return message.feedback
    except Feedback.DoesNotExist:
        return None


@require_http_methods(["GET", "POST"])
@ensure_csrf_cookie
@csrf_protect
def feedback_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the rating form (pre-filled when already rated). POST: store the rating, then redirect
    to the thank-you page. 400 for a tampered token, 410 for an expired one, 429 when rate-limited."""
    browser_lang = page_language(request)
    if rating_limited("view-ip", _client_ip(request), VIEW_LIMIT_PER_IP):
        return _problem(request, browser_lang, "limited", 429)
    try:
        message = _load_answer(token)
    except FeedbackLinkInvalid as exc:
        return _problem(request, browser_lang, "expired" if exc.expired else "invalid", 410 if exc.expired else 400)
    conv = message.conversation
    lang = page_language(request, conv.language)
    existing = _existing(message)
    status = 200
    if request.method == "POST":
        if rating_limited("post-token", token_key(token), POST_LIMIT_PER_TOKEN) or rating_limited(
            "post-ip", _client_ip(request), POST_LIMIT_PER_IP
        ):
            return _problem(request, lang, "limited", 429)
        form = RatingForm(request.POST)
        if form.is_valid():
            try:
                record_feedback(
                    message=message,
                    rating=form.cleaned_data["rating"],
                    comment=form.cleaned_data["comment"],
                    source=Feedback.Source.PAGE,
                )
            except ReviewError:
                status = 400
            else:
                return redirect("feedback:thanks", token=token)
        status = 400
        current, comment = None, request.POST.get("comment", "")[:COMMENT_MAX]
    else:
        current = existing.rating if existing else None
        comment = existing.comment if existing else ""
    t = TEXT[lang]
    answer = mask_text(message.text)
    if len(answer) > ANSWER_PREVIEW_CHARS:
        answer = answer[:ANSWER_PREVIEW_CHARS].rstrip() + "…"
    stars = [{"value": n, "label": t["stars"][n - 1]} for n in range(5, 0, -1)]
    return _respond(
        request,
        "feedback/page.html",
        lang,
        status,
        answer=answer,
        answer_from=t["answer_from"].format(bot=conv.bot.name),
        stars=stars,
        current=current,
        current_note=t["current"].format(n=existing.rating) if existing else "",
        comment=comment,
        error=t["need_rating"] if status == 400 else "",
        comment_max=COMMENT_MAX,
    )


@require_http_methods(["GET"])
def feedback_thanks(request: HttpRequest, token: str) -> HttpResponse:
    """The thank-you page after a rating, with a way back to change it while the link is valid."""
    browser_lang = page_language(request)
    if rating_limited("view-ip", _client_ip(request), VIEW_LIMIT_PER_IP):
        return _problem(request, browser_lang, "limited", 429)
    try:
        message = _load_answer(token)
    except FeedbackLinkInvalid as exc:
        return _problem(request, browser_lang, "expired" if exc.expired else "invalid", 410 if exc.expired else 400)
    existing = _existing(message)
    if existing is None:
        return redirect("feedback:page", token=token)
    lang = page_language(request, message.conversation.language)
    return _respond(
        request,
        "feedback/thanks.html",
        lang,
        token=token,
        rating=existing.rating,
        your_rating=TEXT[lang]["your_rating"].format(n=existing.rating),
    )
