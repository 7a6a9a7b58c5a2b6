"""Single sign-on pages: ``/auth/oidc/start/`` sends the browser to the identity provider,
``/auth/oidc/callback/`` signs the staff user in (or shows why not, in English or Chinese), and
``POST /api/v1/auth/session-token/`` hands a signed-in staff session a JWT pair for the API.

The views are thin: ``apps.accounts.oidc`` runs the protocol and decides who may sign in;
``apps.accounts.signin`` writes the audit rows.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken

from apps.core import ratelimit
from apps.core.audit import audit_record
from apps.core.language import page_language

from .oidc import (
    ID_TOKEN_KEY,
    OidcConfig,
    SignInRefused,
    oidc_begin,
    oidc_claims,
    oidc_config,
    oidc_logout_url,
    oidc_user_for,
)
from .signin import METHOD_OIDC, METHOD_PASSWORD, SESSION_BACKEND, SESSION_METHOD_KEY, audit_signin

logger = logging.getLogger(__name__)

NEXT_KEY = "parley_oidc_next"
#: Each start costs a request to the provider: at most this many per client address per 10 minutes
#: (``OIDC_START_LIMIT_PER_IP``). A callback with a state this browser was not given costs nothing.
START_WINDOW_SECONDS = 600

# Two languages, a dozen reasons: a table, like the feedback page's (no gettext catalogues to compile).
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "back": "Back to the sign-in page",
        "not_configured_title": "Single sign-on is not available",
        "not_configured_body": (
            "Sign-in through an identity provider is not set up on this Parley. Sign in with your "
            "password, or ask your administrator."
        ),
        "denied_title": "Sign-in was cancelled",
        "denied_body": (
            "The identity provider did not let you sign in (you cancelled, or your account may not use Parley there)."
        ),
        "provider_error_title": "The identity provider refused the sign-in",
        "provider_error_body": (
            "The identity provider answered with an error. Please try again; if it keeps happening, "
            "tell your administrator the time of this attempt."
        ),
        "provider_down_title": "The identity provider cannot be reached",
        "provider_down_body": "Parley could not reach the identity provider. Please try again in a few minutes.",
        "limited_title": "Too many attempts",
        "limited_body": "Please try again in a few minutes.",
        "state_title": "This sign-in has expired",
        "state_body": (
            "The sign-in was started in another browser or too long ago. Please start again from the sign-in page."
        ),
        "token_invalid_title": "The sign-in could not be verified",
        "token_invalid_body": (
            "The answer from the identity provider did not pass Parley's checks, so you were not "
            "signed in. Please try again."
        ),
        "no_email_title": "No e-mail address from the identity provider",
        "no_email_body": (
            "The identity provider did not tell Parley your e-mail address, which Parley needs to "
            "find your account. Ask your administrator to release the e-mail claim to Parley."
        ),
        "unverified_title": "Your e-mail address is not verified",
        "unverified_body": "The identity provider says {email} is not verified. Verify it there, then sign in again.",
        "unknown_title": "No Parley account for this address",
        "unknown_body": (
            "There is no Parley staff account for {email}. Ask a Parley administrator to add one "
            "with this e-mail address."
        ),
        "ambiguous_title": "More than one account uses this address",
        "ambiguous_body": (
            "Several Parley accounts use {email}, so Parley cannot tell which one is yours. Ask a "
            "Parley administrator to fix the addresses."
        ),
        "inactive_title": "Your Parley account is disabled",
        "inactive_body": "The Parley account for {email} is disabled. Ask a Parley administrator.",
        "not_staff_title": "Your account may not use the admin",
        "not_staff_body": "The Parley account for {email} has no access to the admin. Ask a Parley administrator.",
        "superuser_title": "Superusers sign in with their password",
        "superuser_body": (
            "The account for {email} is a superuser; superusers sign in with their password, not "
            "through the identity provider."
        ),
    },
    "zh": {
        "back": "返回登录页",
        "not_configured_title": "单点登录不可用",
        "not_configured_body": "此 Parley 未设置通过身份提供方登录。请使用密码登录，或联系管理员。",
        "denied_title": "登录已取消",
        "denied_body": "身份提供方没有允许您登录（您取消了登录，或您的账号无权使用 Parley）。",
        "provider_error_title": "身份提供方拒绝了登录",
        "provider_error_body": "身份提供方返回了错误。请重试；如果问题持续，请把这次尝试的时间告诉管理员。",
        "provider_down_title": "无法连接身份提供方",
        "provider_down_body": "Parley 无法连接身份提供方，请几分钟后再试。",
        "limited_title": "尝试次数过多",
        "limited_body": "请几分钟后再试。",
        "state_title": "本次登录已过期",
        "state_body": "登录是在其他浏览器中发起的，或已超时。请从登录页重新开始。",
        "token_invalid_title": "无法验证本次登录",
        "token_invalid_body": "身份提供方的应答未通过 Parley 的校验，因此没有登录。请重试。",
        "no_email_title": "身份提供方未提供电子邮件地址",
        "no_email_body": (
            "身份提供方没有告诉 Parley 您的电子邮件地址，Parley 需要它来找到您的账号。"
            "请让管理员向 Parley 开放 email 声明。"
        ),
        "unverified_title": "您的电子邮件地址未经验证",
        "unverified_body": "身份提供方表示 {email} 尚未验证。请先在那里完成验证，再重新登录。",
        "unknown_title": "此地址没有 Parley 账号",
        "unknown_body": "{email} 没有对应的 Parley 员工账号。请让 Parley 管理员用这个电子邮件地址为您添加账号。",
        "ambiguous_title": "多个账号使用此地址",
        "ambiguous_body": "有多个 Parley 账号使用 {email}，无法确定哪个是您的。请让 Parley 管理员修正这些地址。",
        "inactive_title": "您的 Parley 账号已停用",
        "inactive_body": "{email} 对应的 Parley 账号已停用。请联系 Parley 管理员。",
        "not_staff_title": "您的账号无权使用管理后台",
        "not_staff_body": "{email} 对应的 Parley 账号无权访问管理后台。请联系 Parley 管理员。",
        "superuser_title": "超级用户请使用密码登录",
        "superuser_body": "{email} 对应的是超级用户账号；超级用户使用密码登录，不通过身份提供方。",
    },
}
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


def _problem(request: HttpRequest, refused: SignInRefused) -> HttpResponse:
    lang = page_language(request)
    t = TEXT[lang]
    context = {
        "lang": HTML_LANG[lang],
        "title": t[f"{refused.reason}_title"],
        "body": t[f"{refused.reason}_body"].format(email=refused.email or "—"),
        "back": t["back"],
        "back_url": reverse("admin:login"),
    }
    response = render(request, "signin/problem.html", context, status=refused.status)
    response["Content-Language"] = HTML_LANG[lang]
    return response


def _safe_next(request: HttpRequest, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("admin:index")


def _refuse(request: HttpRequest, refused: SignInRefused, *, step: str) -> HttpResponse:
    logger.warning(
        "oidc sign-in refused",
        extra={"reason": refused.reason, "step": step, "detail": refused.detail, "status": refused.status},
    )
    if step == "callback":
        audit_signin(request=request, method=METHOD_OIDC, reason=refused.reason, attempted=refused.email)
    return _problem(request, refused)


def _config_or_problem(request: HttpRequest) -> OidcConfig | HttpResponse:
    config = oidc_config()
    if config is None:
        return _problem(request, SignInRefused("not_configured", status=404))
    return config


@never_cache
@require_GET
def oidc_start(request: HttpRequest) -> HttpResponse:
    """Redirect to the identity provider (302), or a page saying why that is not possible."""
    config = _config_or_problem(request)
    if isinstance(config, HttpResponse):
        return config
    limit = settings.OIDC_START_LIMIT_PER_IP
    client = request.META.get("REMOTE_ADDR", "") or "unknown"
    if not ratelimit.hit("signin:oidc-start", client, limit=limit, window_seconds=START_WINDOW_SECONDS).allowed:
        return _refuse(request, SignInRefused("limited", status=429), step="start")
    request.session[NEXT_KEY] = _safe_next(request, request.GET.get("next", ""))
    try:
        return oidc_begin(request, config)
    except SignInRefused as refused:
        return _refuse(request, refused, step="start")


@never_cache
@require_GET
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the browser back: sign in and go on to the page asked for, or a
    page (400/403/502) saying why not. No session is made for a refused sign-in."""
    config = _config_or_problem(request)
    if isinstance(config, HttpResponse):
        return config
    try:
        claims, id_token = oidc_claims(request, config)
        user, provisioned = oidc_user_for(claims, config)
    except SignInRefused as refused:
        return _refuse(request, refused, step="callback")
    next_url = request.session.pop(NEXT_KEY, "") or reverse("admin:index")
    login(request, user, backend=SESSION_BACKEND)
    request.session[SESSION_METHOD_KEY] = METHOD_OIDC
    request.session[ID_TOKEN_KEY] = id_token  # the provider logout's id_token_hint (server-side session)
    audit_signin(request=request, method=METHOD_OIDC, user=user, provisioned=provisioned, issuer=config.issuer)
    logger.info("oidc sign-in", extra={"user_id": user.pk, "provisioned": provisioned})
    return redirect(_safe_next(request, next_url))


class TokenPairSerializer(serializers.Serializer):
    refresh = serializers.CharField()
    access = serializers.CharField()


class SessionTokenView(APIView):
    """``POST``: a JWT pair (``refresh``, ``access``) for the staff user signed in to this browser
    session — the way to the API for people who sign in through the identity provider and have
    no password. Session authentication only (with its CSRF check): a JWT cannot mint new pairs."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=TokenPairSerializer)
    def post(self, request: Request) -> Response:
        refresh = RefreshToken.for_user(request.user)
        method = request.session.get(SESSION_METHOD_KEY, METHOD_PASSWORD)
        audit_record(
            action="signin.token_issued",
            actor=request.user,
            target=request.user.get_username(),
            request=request,
            method=method,
        )
        data: dict[str, Any] = {"refresh": str(refresh), "access": str(refresh.access_token)}
        return Response(data)


@never_cache
@require_http_methods(["GET", "POST"])
def admin_logout(request: HttpRequest) -> HttpResponse:
    """The admin's "Log out": Parley's session ends; for a person who signed in through the
    identity provider (and ``OIDC_PROVIDER_LOGOUT``), the browser then goes on to the provider's
    logout, which ends the single sign-on session too and comes back to the sign-in page."""
    signed_in_by_provider = request.session.get(SESSION_METHOD_KEY) == METHOD_OIDC
    id_token = str(request.session.get(ID_TOKEN_KEY) or "")
    user = request.user if request.user.is_authenticated else None
    if request.method == "GET":
        # A bookmarked or typed sign-out link: Django's view takes POST only (405), which left people
        # signed in on an error page. Ending one's own session is all a GET can do here.
        auth_logout(request)
        response = redirect(settings.LOGOUT_REDIRECT_URL)
    else:
        response = admin.site.logout(request)  # ends the session, then to the sign-in page
    if user is not None:
        audit_record(action="signin.logout", actor=user, target=user.get_username(), request=request)
    config = oidc_config() if signed_in_by_provider and settings.OIDC_PROVIDER_LOGOUT else None
    if config is not None:
        url = oidc_logout_url(config, id_token=id_token)
        if url:
            return redirect(url)
    return response


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's sign-in page. While password sign-in is locked for the username or the address
    (``signin.py``) the form shows why, answered 429 with ``Retry-After``, as the API's is."""
    response = admin.site.login(request)
    locked = getattr(request, "parley_signin_locked", 0)
    if locked and response.status_code == 200:
        response.status_code = 429
        response["Retry-After"] = str(math.ceil(locked))
    return response


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language switch (the console's user menu, the sign-in page): Django's ``set_language``
    (cookie, redirect to ``next``), and for a signed-in staff user the choice is stored too, so it
    follows them to another browser (docs/i18n.md)."""
    from django.views.i18n import set_language as django_set_language

    from .middleware import SESSION_KEY
    from .models import StaffPreference

    language = request.POST.get("language", "")
    valid = language in {code for code, _name in settings.LANGUAGES}
    if valid and request.user.is_authenticated:
        StaffPreference.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[SESSION_KEY] = language
    return django_set_language(request)
