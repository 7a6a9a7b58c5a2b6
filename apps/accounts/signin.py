"""Staff sign-in rules shared by every way in: the password policy and the audit trail.

* ``PASSWORD_SIGNIN`` (``all`` | ``superusers``): with ``superusers``, only superusers may sign in
  with a password — in the admin and at the API's password token endpoint; everyone else signs in
  through the identity provider (``apps.accounts.oidc``). Superusers keep their password as the way
  in when the provider is down or misconfigured.
* Every sign-in, by password or through the provider, accepted or refused, is one audit row:
  ``signin.succeeded`` / ``signin.refused`` with ``method`` (``password`` | ``oidc``), ``via``
  (``admin`` | ``api``) and, for refusals, ``reason``. Addresses a refusal names are masked.
* Password guessing is limited (``SIGNIN_*`` settings): too many failed passwords for one username
  lock that username out from every address for a while, and too many from one client address lock
  that address out for every username. While locked even the right password is refused, with the
  same message whether or not the username exists. A lockout is a ``signin.locked_out`` audit row;
  an attempt refused by one is ``signin.refused`` with reason ``locked``. The counts live in the
  cache (``apps.core.ratelimit``); when the cache cannot be reached the limits are skipped (fail
  open, with a warning in the log) so staff can still sign in to fix things.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled

from apps.core import ratelimit
from apps.core.audit import audit_record
from apps.core.language import page_language
from apps.core.metrics import record_signin_failure, record_signin_lockout
from apps.core.pii import mask_text

logger = logging.getLogger(__name__)

#: Session key set when a session signed in through the provider (absent: by password).
SESSION_METHOD_KEY = "parley_signin_method"
#: The backend a session signed in through the provider is bound to.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"

METHOD_PASSWORD = "password"
METHOD_OIDC = "oidc"


def password_signin_allowed(user: Any) -> bool:
    """True when ``user`` may sign in with a password under ``PASSWORD_SIGNIN``."""
    return settings.PASSWORD_SIGNIN != "superusers" or bool(user.is_superuser)


def _via(request: HttpRequest | None) -> str:
    return "api" if request is not None and request.path.startswith("/api/") else "admin"


def audit_signin(
    *, request: HttpRequest | None, method: str, user: Any = None, reason: str = "", attempted: str = "", **detail: Any
) -> None:
    """One audit row for a sign-in: accepted when ``reason`` is empty, refused otherwise.
    ``attempted`` (a username or an address) is masked before it is stored."""
    target = user.get_username() if user is not None else mask_text(attempted[:200])
    fields: dict[str, Any] = {"method": method, "via": _via(request), **detail}
    if reason:
        fields["reason"] = reason
        record_signin_failure(method=method, via=fields["via"], reason=reason)
    audit_record(
        action="signin.refused" if reason else "signin.succeeded",
        actor=user if not reason else None,
        target=target,
        request=request,
        **fields,
    )


# --- Limits on password guessing ------------------------------------------------------------------
SCOPE_USERNAME = "signin:username"
SCOPE_ADDRESS = "signin:address"
#: What the limiter does not survive: the cache (Redis) down or unreachable. Anything else is a bug.
LIMITER_ERRORS = (RedisError, OSError)

LOCKED_TEXT = {
    "en": "Too many failed sign-in attempts: signing in is temporarily blocked. Please try again in {wait}.",
    "zh": "登录失败次数过多，暂时无法登录。请{wait}后再试。",
}


def _wait_text(seconds: float, lang: str) -> str:
    """Roughly how long: "about 15 minutes" / "约 15 分钟" (hours from 90 minutes on)."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes >= 90:
        hours = round(minutes / 60)
        return f"约 {hours} 小时" if lang == "zh" else f"about {hours} hours"
    if lang == "zh":
        return f"约 {minutes} 分钟"
    return "about a minute" if minutes == 1 else f"about {minutes} minutes"


def locked_message(request: Any, seconds: float) -> str:
    """The "sign-in is temporarily blocked" message in the page's language (Chinese or English)."""
    lang = page_language(request)
    return LOCKED_TEXT[lang].format(wait=_wait_text(seconds, lang))


def _username_key(username: str) -> str:
    """The cache subject for a username: case and Unicode form folded (``Alice`` and ``alice`` share
    one count), hashed so that whatever was typed makes a short, safe key."""
    folded = unicodedata.normalize("NFKC", username.strip()).casefold()
    return hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _address_key(address: str) -> str:
    """The cache subject for a client address; IPv6 by /64 (one host usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is 192.0.2.1
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _client_address(request: Any) -> str:
    return _address_key(request.META.get("REMOTE_ADDR", "") or "")


def _limits() -> tuple[int, int, int, int]:
    return (
        settings.SIGNIN_FAILURES_PER_USERNAME,
        settings.SIGNIN_FAILURES_PER_ADDRESS,
        settings.SIGNIN_FAILURE_WINDOW_SECONDS,
        settings.SIGNIN_LOCKOUT_SECONDS,
    )


def _limiter_down(step: str) -> None:
    logger.warning(
        "sign-in limiter unavailable: password sign-in allowed without the failure limits",
        extra={"step": step},
        exc_info=True,
    )


def signin_locked_for(request: Any, username: str) -> float:
    """Seconds until password sign-in for ``username`` from this client may be tried again (0: now).
    Fails open: 0 when the cache cannot be reached."""
    try:
        return max(
            ratelimit.locked_for(SCOPE_USERNAME, _username_key(username)),
            ratelimit.locked_for(SCOPE_ADDRESS, _client_address(request)),
        )
    except LIMITER_ERRORS:
        _limiter_down("check")
        return 0.0


def _count_failure(request: Any, username: str) -> float:
    """Count a wrong password against the username and the client address. Returns the length of
    the lockout this failure began (0: none); each lockout is audited, logged and counted."""
    per_username, per_address, window, lock_seconds = _limits()
    address = _client_address(request)
    begun = 0.0
    for scope, subject, limit, kind, target in (
        (SCOPE_USERNAME, _username_key(username), per_username, "username", mask_text(username[:200])),
        (SCOPE_ADDRESS, address, per_address, "address", address),
    ):
        try:
            decision = ratelimit.strike(scope, subject, limit=limit, window_seconds=window, lock_seconds=lock_seconds)
        except LIMITER_ERRORS:
            _limiter_down("count")
            return 0.0
        if decision.allowed:
            continue
        begun = max(begun, decision.retry_after)
        audit_record(
            action="signin.locked_out",
            target=target,
            request=request,
            method=METHOD_PASSWORD,
            via=_via(request),
            scope=kind,
            failures=decision.count,
            seconds=int(decision.retry_after),
        )
        record_signin_lockout(scope=kind)
        logger.warning(
            "password sign-in locked out",
            extra={"scope": kind, "target": target, "failures": decision.count, "seconds": int(decision.retry_after)},
        )
    return begun


def _clear_failures(username: str) -> None:
    try:
        ratelimit.clear(SCOPE_USERNAME, _username_key(username))
    except LIMITER_ERRORS:
        _limiter_down("reset")


def unlock_signin(*, username: str = "", address: str = "", actor: Any = None, via: str = "") -> None:
    """End a lockout early: forgets the failures and the lock of ``username`` and/or ``address``,
    each a ``signin.unlocked`` audit row naming who did it (``actor``, an admin) or how (``via``).
    Used by the user admin's action and ``manage.py unlock_signin``."""
    for scope, value, key in ((SCOPE_USERNAME, username, _username_key), (SCOPE_ADDRESS, address, _address_key)):
        if value:
            ratelimit.clear(scope, key(value), lock=True)
            detail = {"via": via} if via else {}
            audit_record(action="signin.unlocked", actor=actor, target=value, **detail)


def _refuse_password(request: Any, reason: str, username: str) -> None:
    audit_signin(request=request, method=METHOD_PASSWORD, reason=reason, attempted=username)
    logger.info(
        "password sign-in refused",
        extra={"reason": reason, "via": _via(request), "target": mask_text(username[:200])},
    )


def _refuse_locked(request: Any, seconds: float) -> None:
    """Stop this attempt: the admin form shows ``locked_message``; the API answers 429 with it."""
    request.parley_signin_locked = seconds
    if _via(request) == "api":
        refusal = Throttled(detail=locked_message(request, seconds), code="signin_locked")
        refusal.wait = math.ceil(seconds)  # Retry-After; set here so the message stays one language
        raise refusal
    raise PermissionDenied


class PasswordSignInBackend(ModelBackend):
    """``ModelBackend`` with the password policy and the audit trail.

    Listed before ``ModelBackend``. It answers every username + password attempt itself: a refusal
    raises ``PermissionDenied``, which stops Django from asking ``ModelBackend`` to check the same
    password again. ``ModelBackend`` stays listed so sessions bound to it keep working.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        username = str(username)
        if request is not None:
            locked = signin_locked_for(request, username)
            if locked:  # checked before the password: the right one does not get in either
                _refuse_password(request, "locked", username)
                _refuse_locked(request, locked)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if request is None:  # not a person at a sign-in page (tests, management commands)
            if user is None or not password_signin_allowed(user):
                raise PermissionDenied
            return user
        if user is None:
            _refuse_password(request, "invalid_credentials", username)
            begun = _count_failure(request, username)
            if begun:
                _refuse_locked(request, begun)
            raise PermissionDenied
        if not password_signin_allowed(user):
            request.parley_password_refused = True
            _refuse_password(request, "password_signin_off", username)
            raise PermissionDenied
        _clear_failures(username)
        if not getattr(request, "parley_signin_audit_deferred", False):
            audit_signin(request=request, method=METHOD_PASSWORD, user=user)
        return user


class AdminSignInForm(AdminAuthenticationForm):
    """The admin's password form: says plainly when password sign-in is off for the account, and
    audits the outcome once the admin's own checks (active staff) have passed."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "password_signin_off": "Password sign-in is turned off for this account: sign in with single sign-on instead.",
    }

    def clean(self) -> dict[str, Any]:
        if self.request is not None:
            self.request.parley_signin_audit_deferred = True
        return super().clean()

    def get_invalid_login_error(self) -> ValidationError:
        locked = getattr(self.request, "parley_signin_locked", 0)
        if locked:
            return ValidationError(locked_message(self.request, locked), code="locked")
        if getattr(self.request, "parley_password_refused", False):
            return ValidationError(self.error_messages["password_signin_off"], code="password_signin_off")
        return super().get_invalid_login_error()

    def confirm_login_allowed(self, user: Any) -> None:
        try:
            super().confirm_login_allowed(user)
        except ValidationError:
            audit_signin(
                request=self.request,
                method=METHOD_PASSWORD,
                reason="inactive" if not user.is_active else "not_staff",
                attempted=user.get_username(),
            )
            raise
        audit_signin(request=self.request, method=METHOD_PASSWORD, user=user)
