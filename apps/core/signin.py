"""Staff sign-in rules shared by every way in: the password policy and the audit trail.

* ``PASSWORD_SIGNIN`` (``all`` | ``superusers``): with ``superusers``, only superusers may sign in
  with a password — in the admin and at the API's password token endpoint; everyone else signs in
  through the identity provider (``apps.core.oidc``). Superusers keep their password as the way
  in when the provider is down or misconfigured.
* Every sign-in, by password or through the provider, accepted or refused, is one audit row:
  ``signin.succeeded`` / ``signin.refused`` with ``method`` (``password`` | ``oidc``), ``via``
  (``admin`` | ``api``) and, for refusals, ``reason``. Addresses a refusal names are masked.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from .audit import audit_record
from .pii import mask_text

#: Session key set when a session signed in through the provider (absent: by password).
SESSION_METHOD_KEY = "parley_signin_method"
#: The backend a session signed in through the provider is bound to.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"

METHOD_PASSWORD = "password"
METHOD_OIDC = "oidc"


def password_signin_allowed(user: Any) -> bool:
    """True when ``user`` may sign in with a password under ``PASSWORD_SIGNIN``."""
    return getattr(settings, "PASSWORD_SIGNIN", "all") != "superusers" or bool(user.is_superuser)


def _via(request: HttpRequest | None) -> str:
    return "api" if request is not None and request.path.startswith("/api/") else "admin"


def audit_signin(
    *, request: HttpRequest | None, method: str, user: Any = None, reason: str = "", attempted: str = "", **detail: Any
) -> None:
    """One audit row for a sign-in: accepted when ``reason`` is empty, refused otherwise.
    ``attempted`` (a username or an address) is masked before it is stored."""
    target = user.get_username() if user is not None else mask_text(attempted)
    fields: dict[str, Any] = {"method": method, "via": _via(request), **detail}
    if reason:
        fields["reason"] = reason
    audit_record(
        action="signin.refused" if reason else "signin.succeeded",
        actor=user if not reason else None,
        target=target,
        request=request,
        **fields,
    )


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
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if request is None:  # not a person at a sign-in page (tests, management commands)
            if user is None or not password_signin_allowed(user):
                raise PermissionDenied
            return user
        if user is None:
            audit_signin(request=request, method=METHOD_PASSWORD, reason="invalid_credentials", attempted=str(username))
            raise PermissionDenied
        if not password_signin_allowed(user):
            request.parley_password_refused = True
            audit_signin(request=request, method=METHOD_PASSWORD, reason="password_signin_off", attempted=str(username))
            raise PermissionDenied
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
