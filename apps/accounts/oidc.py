"""Staff sign-in through an OpenID Connect identity provider (Keycloak, Entra ID, Okta, Google
Workspace, Authing, …).

The protocol is Authlib's Django client: authorization code flow with ``state``, ``nonce`` and PKCE
(S256); the id_token's signature is checked against the provider's JWKS with only the algorithms in
``OIDC_SIGN_ALGORITHMS`` (RS256), and its issuer, audience (our client id), expiry and nonce against
what Parley sent. Parley decides who may then sign in (``oidc_user_for``): a verified e-mail
matched to an existing active staff user, or — for e-mail domains on ``OIDC_PROVISION_DOMAINS`` —
a new staff user without tenant memberships. Tenancy (memberships) decides what they see.

Every failure is a ``SignInRefused`` carrying a reason code; the views turn it into a page and an
audit row. The client secret lives in ``OidcConfig.client_secret`` (left out of its repr) and in
Authlib's HTTP session only; it is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.django_client import DjangoIntegration, DjangoOAuth2App
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_variables
from joserfc.errors import JoseError

logger = logging.getLogger(__name__)

#: The name under which Authlib keeps the flow's state (state, nonce, PKCE verifier) in the session.
CLIENT_NAME = "parley_oidc"


class SignInRefused(Exception):
    """A sign-in that did not happen. ``reason`` names the page text and the audit reason;
    ``status`` is the HTTP status of the page; ``detail`` is for the log only (no secrets);
    ``email`` is the address the provider asserted, when the refusal is about the person."""

    def __init__(self, reason: str, *, status: int = 403, detail: str = "", email: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.detail = detail
        self.email = email


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    label: str
    discovery_url: str
    endpoints: dict[str, str]
    token_auth_method: str
    timeout: float
    algorithms: tuple[str, ...]
    require_email_verified: bool
    provision_domains: frozenset[str]
    allow_superusers: bool

    @property
    def redirect_uri(self) -> str:
        return settings.PUBLIC_BASE_URL + "/auth/oidc/callback/"


_EXPLICIT = {
    "authorization_endpoint": "OIDC_AUTHORIZATION_ENDPOINT",
    "token_endpoint": "OIDC_TOKEN_ENDPOINT",
    "userinfo_endpoint": "OIDC_USERINFO_ENDPOINT",
    "jwks_uri": "OIDC_JWKS_URI",
    "end_session_endpoint": "OIDC_END_SESSION_ENDPOINT",
}
_EXPLICIT_REQUIRED = ("authorization_endpoint", "token_endpoint", "jwks_uri")


def oidc_config() -> OidcConfig | None:
    """The provider settings, or None when sign-in through a provider is off. Incomplete settings
    count as off, with a warning in the log naming what is missing (never a value)."""
    if not settings.OIDC_ENABLED:
        return None
    endpoints = {key: getattr(settings, name) for key, name in _EXPLICIT.items()}
    endpoints = {key: value for key, value in endpoints.items() if value}
    missing = [name for name in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET") if not getattr(settings, name)]
    explicit_only = all(key in endpoints for key in _EXPLICIT_REQUIRED)
    if missing:
        logger.warning("oidc sign-in is enabled but not configured", extra={"missing": ",".join(missing)})
        return None
    issuer = settings.OIDC_ISSUER
    discovery = settings.OIDC_DISCOVERY_URL or issuer.rstrip("/") + "/.well-known/openid-configuration"
    scopes = tuple(settings.OIDC_SCOPES)
    if "openid" not in scopes:
        scopes = ("openid", *scopes)
    return OidcConfig(
        issuer=issuer,
        client_id=settings.OIDC_CLIENT_ID,
        client_secret=settings.OIDC_CLIENT_SECRET,
        scopes=scopes,
        label=settings.OIDC_BUTTON_LABEL or "single sign-on",
        discovery_url="" if explicit_only else discovery,
        endpoints=endpoints,
        token_auth_method=settings.OIDC_TOKEN_AUTH_METHOD,
        timeout=settings.OIDC_TIMEOUT,
        algorithms=tuple(settings.OIDC_SIGN_ALGORITHMS),
        require_email_verified=settings.OIDC_REQUIRE_EMAIL_VERIFIED,
        provision_domains=frozenset(
            d.strip().lower().lstrip("@") for d in settings.OIDC_PROVISION_DOMAINS if d.strip()
        ),
        allow_superusers=settings.OIDC_ALLOW_SUPERUSERS,
    )


class _ProviderApp(DjangoOAuth2App):
    """Authlib's Django client, with the provider document pinned to Parley's settings: the
    discovered issuer must be the configured one, explicit endpoints win over discovered ones, and
    only the configured signing algorithms are accepted for id_tokens."""

    def __init__(self, config: OidcConfig) -> None:
        self._config = config
        super().__init__(
            DjangoIntegration(CLIENT_NAME),
            name=CLIENT_NAME,
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.discovery_url or None,
            client_kwargs={
                "scope": " ".join(config.scopes),
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": config.token_auth_method,
                "default_timeout": config.timeout,
            },
            issuer=config.issuer,
            **config.endpoints,
        )

    def load_server_metadata(self) -> dict[str, Any]:
        metadata = super().load_server_metadata()
        if metadata.get("issuer") != self._config.issuer:
            raise SignInRefused("provider_error", status=502, detail="the discovery document names another issuer")
        metadata.update(self._config.endpoints)
        for key in _EXPLICIT_REQUIRED:
            if not metadata.get(key):
                raise SignInRefused("provider_error", status=502, detail=f"the provider document has no {key}")
        metadata["id_token_signing_alg_values_supported"] = list(self._config.algorithms)
        return metadata


def _provider_call(what: str, call: Any) -> Any:
    """Run one exchange with the provider, turning its failures into ``SignInRefused``."""
    try:
        return call()
    except SignInRefused:
        raise
    except MismatchingStateError as exc:
        raise SignInRefused("state", status=400, detail="state unknown to this browser session") from exc
    except OAuthError as exc:
        raise SignInRefused(
            "provider_error", status=502, detail=f"{what}: {exc.error}: {(exc.description or '')[:200]}"
        ) from exc
    except JoseError as exc:
        raise SignInRefused("token_invalid", status=400, detail=f"{what}: {type(exc).__name__}: {exc}") from exc
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise SignInRefused("provider_error", status=502, detail=f"{what}: HTTP {status}") from exc
    except requests.JSONDecodeError as exc:
        raise SignInRefused("provider_error", status=502, detail=f"{what}: the answer is not JSON") from exc
    except requests.RequestException as exc:
        raise SignInRefused("provider_down", status=502, detail=f"{what}: {type(exc).__name__}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        # Malformed tokens or documents (a JWT that does not parse, a JWKS that is not one).
        raise SignInRefused("token_invalid", status=400, detail=f"{what}: {type(exc).__name__}: {exc}") from exc


@sensitive_variables("app")
def oidc_begin(request: HttpRequest, config: OidcConfig) -> HttpResponse:
    """The redirect to the provider's authorization endpoint; state, nonce and the PKCE verifier
    are kept in the session. Raises ``SignInRefused`` when the provider cannot be reached."""
    app = _ProviderApp(config)
    return _provider_call("authorize", lambda: app.authorize_redirect(request, config.redirect_uri))


#: Session key of the id_token of an OIDC sign-in: the ``id_token_hint`` of the provider logout.
ID_TOKEN_KEY = "parley_oidc_id_token"


@sensitive_variables("app", "token")
def oidc_claims(request: HttpRequest, config: OidcConfig) -> tuple[dict[str, Any], str]:
    """Finish the flow on the callback request: check state, exchange the code (with the PKCE
    verifier), validate the id_token and return its claims, completed from the userinfo endpoint
    when the id_token carries no e-mail, and the id_token itself (the provider logout's hint).
    Raises ``SignInRefused``."""
    error = request.GET.get("error")
    if error:
        # The provider sent the person back without a code: they cancelled, or were not allowed.
        # The flow's state is spent either way.
        request.session.pop(f"_state_{CLIENT_NAME}_{request.GET.get('state', '')}", None)
        description = request.GET.get("error_description", "")[:200]
        reason = "denied" if error == "access_denied" else "provider_error"
        raise SignInRefused(reason, status=403 if reason == "denied" else 502, detail=f"{error[:64]}: {description}")
    if not request.GET.get("code") or not request.GET.get("state"):
        raise SignInRefused("state", status=400, detail="callback without code or state")
    app = _ProviderApp(config)
    claims_options = {
        "iss": {"essential": True, "value": config.issuer},
        "aud": {"essential": True, "value": config.client_id},
    }
    token = _provider_call("token", lambda: app.authorize_access_token(request, claims_options=claims_options))
    if "userinfo" not in token:
        raise SignInRefused("token_invalid", status=400, detail="the token answer carried no id_token")
    claims = dict(token["userinfo"])
    if not claims.get("email") and app.load_server_metadata().get("userinfo_endpoint"):
        info = _provider_call("userinfo", lambda: app.userinfo(token=token))
        if info.get("sub") != claims.get("sub"):
            raise SignInRefused("token_invalid", status=400, detail="userinfo is about another subject")
        claims = {**info, **claims}
    return claims, str(token.get("id_token") or "")


def _email_verified(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def oidc_user_for(claims: Mapping[str, Any], config: OidcConfig) -> tuple[Any, bool]:
    """The staff user these validated claims sign in, and whether it was just created.

    Matches the ``email`` claim (case-insensitively) to exactly one user. Refuses (``SignInRefused``)
    a missing or unverified e-mail (``email_verified`` false; absent too when
    ``OIDC_REQUIRE_EMAIL_VERIFIED``), an address shared by several users, an inactive or non-staff
    user, a superuser unless ``OIDC_ALLOW_SUPERUSERS``, and an unknown address outside
    ``OIDC_PROVISION_DOMAINS``. A new user is staff, never superuser, and has no membership.
    """
    email = str(claims.get("email") or "").strip()
    if "@" not in email or len(email) > 254:
        raise SignInRefused("no_email")
    verified = _email_verified(claims.get("email_verified"))
    if verified is False or (verified is None and config.require_email_verified):
        raise SignInRefused("unverified", email=email)
    User = get_user_model()
    users = list(User.objects.filter(email__iexact=email)[:2])
    if len(users) > 1:
        raise SignInRefused("ambiguous", email=email)
    if users:
        user = users[0]
        if not user.is_active:
            raise SignInRefused("inactive", email=email)
        if not user.is_staff:
            raise SignInRefused("not_staff", email=email)
        if user.is_superuser and not config.allow_superusers:
            raise SignInRefused("superuser", email=email)
        return user, False
    domain = email.rsplit("@", 1)[1].lower()
    if domain not in config.provision_domains:
        raise SignInRefused("unknown", email=email)
    return _provision(claims, email), True


def _provision(claims: Mapping[str, Any], email: str) -> Any:
    """A new staff user for ``email`` (username = the address, made unique), with no usable
    password and no membership. Two first sign-ins at once create one user."""
    User = get_user_model()
    base = email.lower()[:140]
    for attempt in range(1, 6):
        username = base if attempt == 1 else f"{base}-{attempt}"
        try:
            with transaction.atomic():
                existing = User.objects.filter(email__iexact=email).first()
                if existing is not None:  # created by a concurrent sign-in a moment ago
                    return existing
                user = User(
                    username=username,
                    email=email,
                    is_staff=True,
                    is_superuser=False,
                    first_name=str(claims.get("given_name") or "")[:150],
                    last_name=str(claims.get("family_name") or "")[:150],
                )
                user.set_unusable_password()
                user.save()
                return user
        except IntegrityError:
            continue
    raise SignInRefused("unknown", email=email, detail="no free username for a new user")


@sensitive_variables("id_token")
def oidc_logout_url(config: OidcConfig, *, id_token: str) -> str:
    """Where to send a browser that signed out of Parley so the provider ends its session too
    (OpenID Connect RP-Initiated Logout): the provider's ``end_session_endpoint`` with the
    ``id_token_hint``, Parley's client id and the way back to the sign-in page. "" when the
    provider has no such endpoint or cannot be reached (then only Parley's session ends)."""
    try:
        endpoint = str(_ProviderApp(config).load_server_metadata().get("end_session_endpoint") or "")
    except Exception as exc:  # the provider away, or a document Parley refuses: sign out locally
        logger.warning("oidc provider logout skipped: the provider document is unavailable (%s)", type(exc).__name__)
        return ""
    if not endpoint.startswith(("https://", "http://")):
        return ""
    params = {"client_id": config.client_id, "post_logout_redirect_uri": settings.PUBLIC_BASE_URL + "/admin/login/"}
    if id_token:
        params["id_token_hint"] = id_token
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
