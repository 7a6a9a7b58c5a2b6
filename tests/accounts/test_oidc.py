"""Staff sign-in through an OpenID Connect provider, against a fake Keycloak-like provider on
127.0.0.1 (tests/fakes/oidc.py) signing RS256 id_tokens with a key made here; and the password
sign-in rules and audit trail beside it."""

from __future__ import annotations

import base64
import logging
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.core.models import AuditLog
from apps.tenants.models import Membership
from tests.factories import PASSWORD, make_bot, make_tenant, make_user
from tests.fakes.oidc import OIDC, FakeIdentityProvider
from tests.fakes.server import FakeServer

pytestmark = pytest.mark.django_db

CALLBACK = "/auth/oidc/callback/"


@pytest.fixture
def world():
    a, b = make_tenant("tenant-a"), make_tenant("tenant-b")
    bots = {t.slug: make_bot(t, slug=f"bot-{t.slug}") for t in (a, b)}
    make_user("root", superuser=True)  # setup is done: the admin is open
    admin_a = make_user("admin-a", tenant=a, role="admin")  # e-mail admin-a@example.com
    return {"a": a, "b": b, "bots": bots, "admin_a": admin_a}


@pytest.fixture
def idp(fake_server):
    return FakeIdentityProvider(fake_server)


@pytest.fixture
def oidc_on(settings, idp):
    settings.OIDC_ENABLED = True
    settings.OIDC_ISSUER = idp.issuer
    settings.OIDC_DISCOVERY_URL = ""
    for name in ("AUTHORIZATION_ENDPOINT", "TOKEN_ENDPOINT", "USERINFO_ENDPOINT", "JWKS_URI"):
        setattr(settings, f"OIDC_{name}", "")
    settings.OIDC_CLIENT_ID = idp.client_id
    settings.OIDC_CLIENT_SECRET = idp.client_secret
    settings.OIDC_BUTTON_LABEL = "Keycloak"
    settings.OIDC_PROVISION_DOMAINS = []
    settings.OIDC_REQUIRE_EMAIL_VERIFIED = False
    settings.OIDC_ALLOW_SUPERUSERS = False
    settings.PASSWORD_SIGNIN = "all"
    settings.OIDC_START_LIMIT_PER_IP = 60
    return idp


def start(client, next_url="/admin/"):
    """Press "Sign in with …": Parley's redirect to the provider's authorize endpoint."""
    resp = client.get("/auth/oidc/start/", {"next": next_url})
    assert resp.status_code == 302, resp.content
    return resp["Location"]


def at_provider(authorize_url):
    """The browser at the provider: the person is signed in there, so it redirects straight back."""
    resp = httpx.get(authorize_url, follow_redirects=False, timeout=5)
    assert resp.status_code == 302
    return resp.headers["location"]


def come_back(client, back_url, **extra):
    parts = urlsplit(back_url)
    assert parts.path == CALLBACK
    return client.get(f"{parts.path}?{parts.query}", **extra)


def sign_in(client, idp, *, next_url="/admin/", **extra):
    return come_back(client, at_provider(start(client, next_url)), **extra)


def signed_in_user(client):
    return client.session.get("_auth_user_id")


def last_audit(action):
    return AuditLog.objects.filter(action=action).order_by("-id").first()


# --- the login page ------------------------------------------------------------------------------
def test_login_page_shows_the_button_only_when_configured(client, world, settings, idp):
    settings.OIDC_ENABLED = False
    page = client.get("/admin/login/?next=/admin/bots/").content.decode()
    assert 'id="login-form"' in page
    assert "Sign in with" not in page

    settings.OIDC_ENABLED = True  # but no issuer, client id or secret: still no button
    settings.OIDC_ISSUER = settings.OIDC_CLIENT_ID = settings.OIDC_CLIENT_SECRET = ""
    assert "Sign in with" not in client.get("/admin/login/").content.decode()
    assert client.get("/auth/oidc/start/").status_code == 404

    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = idp.issuer, "parley", "s3cret-value"
    settings.OIDC_BUTTON_LABEL = "Keycloak"
    page = client.get("/admin/login/?next=/admin/bots/").content.decode()
    assert "Sign in with Keycloak" in page
    assert 'href="/auth/oidc/start/?next=%2Fadmin%2Fbots%2F"' in page
    assert 'id="login-form"' in page  # password sign-in stays
    assert "s3cret-value" not in page


# --- a known user ---------------------------------------------------------------------------------
def test_known_user_signs_in_and_sees_only_their_tenant(client, world, oidc_on):
    idp = oidc_on
    idp.sign_in_as("Admin-A@Example.com", verified=True)  # e-mails match case-insensitively
    authorize = start(client, "/admin/bots/bot/")
    q = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert authorize.startswith(idp.server.url + OIDC + "/auth?")
    assert q["client_id"] == idp.client_id
    assert q["redirect_uri"] == "http://127.0.0.1:8000/auth/oidc/callback/"
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] and q["state"] and q["nonce"]
    assert set(q["scope"].split()) == {"openid", "email", "profile"}
    assert idp.client_secret not in authorize

    resp = come_back(client, at_provider(authorize))
    assert resp.status_code == 302
    assert resp["Location"] == "/admin/bots/bot/"
    assert idp.pkce_checked == 1 and idp.problems == []
    assert signed_in_user(client) == str(world["admin_a"].pk)

    bots = client.get("/admin/bots/bot/")
    assert bots.status_code == 200
    shown = {b.slug for b in bots.context["cl"].result_list}
    assert shown == {"bot-tenant-a"}
    other = world["bots"]["tenant-b"]
    assert client.get(f"/admin/bots/bot/{other.pk}/change/").status_code == 302  # "doesn't exist"

    row = last_audit("signin.succeeded")
    assert row.actor == world["admin_a"]
    assert row.detail["method"] == "oidc" and row.detail["via"] == "admin"
    assert row.detail["provisioned"] is False


def test_email_from_userinfo_when_the_id_token_has_none(client, world, oidc_on):
    oidc_on.sign_in_as("admin-a@example.com")
    oidc_on.email_in_id_token = False
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 302
    assert signed_in_user(client) == str(world["admin_a"].pk)
    assert len(oidc_on.server.requests_to(OIDC + "/userinfo")) == 1


def test_explicit_endpoints_without_discovery(client, world, oidc_on, settings):
    idp = oidc_on
    base = idp.server.url + OIDC
    settings.OIDC_AUTHORIZATION_ENDPOINT = base + "/auth"
    settings.OIDC_TOKEN_ENDPOINT = base + "/token"
    settings.OIDC_JWKS_URI = base + "/certs"
    idp.server.route("GET", "/realms/parley/.well-known/", lambda req: (500, {"error": "no discovery here"}))
    idp.sign_in_as("admin-a@example.com")
    assert sign_in(client, idp).status_code == 302
    assert signed_in_user(client) == str(world["admin_a"].pk)
    assert idp.server.requests_to("/realms/parley/.well-known/") == []


# --- who may not sign in -------------------------------------------------------------------------
def test_unknown_email_is_refused_with_a_clear_page(client, world, oidc_on):
    oidc_on.sign_in_as("stranger@example.com")
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 403
    page = resp.content.decode()
    assert "No Parley account for this address" in page
    assert "stranger@example.com" in page  # the person sees which address the provider sent
    assert 'href="/admin/login/"' in page
    assert signed_in_user(client) is None
    assert client.get("/admin/").status_code == 302  # back to the login page
    row = last_audit("signin.refused")
    assert row.actor is None
    assert row.detail == {"method": "oidc", "via": "admin", "reason": "unknown"}
    assert row.target == "s***@example.com"  # masked in the audit trail


def test_refused_page_speaks_chinese(client, world, oidc_on):
    oidc_on.sign_in_as("stranger@example.com")
    resp = sign_in(client, oidc_on, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")
    assert resp.status_code == 403
    page = resp.content.decode()
    assert "此地址没有 Parley 账号" in page
    assert '<html lang="zh-Hans">' in page
    assert "返回登录页" in page


@pytest.mark.parametrize("verified", [False, "false"])
def test_unverified_email_is_refused(client, world, oidc_on, verified):
    oidc_on.sign_in_as("admin-a@example.com", verified=verified)
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 403
    assert "Your e-mail address is not verified" in resp.content.decode()
    assert signed_in_user(client) is None
    assert last_audit("signin.refused").detail["reason"] == "unverified"


def test_missing_email_verified_claim_policy(client, world, oidc_on, settings):
    oidc_on.sign_in_as("admin-a@example.com", verified=None)  # the provider does not send the claim
    assert sign_in(client, oidc_on).status_code == 302
    client.logout()
    settings.OIDC_REQUIRE_EMAIL_VERIFIED = True
    assert sign_in(client, oidc_on).status_code == 403
    assert signed_in_user(client) is None


def test_inactive_non_staff_and_superusers_are_refused(client, world, oidc_on, settings):
    User = get_user_model()
    User.objects.filter(username="admin-a").update(is_active=False)
    oidc_on.sign_in_as("admin-a@example.com")
    assert "Your Parley account is disabled" in sign_in(client, oidc_on).content.decode()

    User.objects.create_user("clerk", "clerk@example.com", PASSWORD)  # not staff
    oidc_on.sign_in_as("clerk@example.com")
    assert "may not use the admin" in sign_in(client, oidc_on).content.decode()

    oidc_on.sign_in_as("root@example.com")
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 403 and "Superusers sign in with their password" in resp.content.decode()
    assert signed_in_user(client) is None
    settings.OIDC_ALLOW_SUPERUSERS = True
    assert sign_in(client, oidc_on).status_code == 302
    assert signed_in_user(client) == str(User.objects.get(username="root").pk)


def test_an_address_shared_by_two_users_is_refused(client, world, oidc_on):
    make_user("twin")
    get_user_model().objects.filter(username="twin").update(email="ADMIN-A@example.com")
    oidc_on.sign_in_as("admin-a@example.com")
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 403 and "More than one account" in resp.content.decode()
    assert signed_in_user(client) is None


# --- provisioning --------------------------------------------------------------------------------
def test_allow_listed_domain_provisions_a_staff_user_without_memberships(client, world, oidc_on, settings):
    settings.OIDC_PROVISION_DOMAINS = ["acme.example"]
    oidc_on.sign_in_as("new.person@ACME.example", given_name="New", family_name="Person")
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 302
    user = get_user_model().objects.get(email__iexact="new.person@acme.example")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert not user.has_usable_password()
    assert (user.first_name, user.last_name) == ("New", "Person")
    assert not Membership.objects.filter(user=user).exists()
    assert signed_in_user(client) == str(user.pk)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert index.context["app_list"] == []  # sees nothing until a superuser grants a membership
    bots = client.get("/admin/bots/bot/")
    assert bots.status_code == 403
    assert last_audit("signin.succeeded").detail["provisioned"] is True

    # The second sign-in finds the same user.
    client.logout()
    assert sign_in(client, oidc_on).status_code == 302
    assert get_user_model().objects.filter(email__iexact="new.person@acme.example").count() == 1


def test_domains_off_the_allow_list_are_not_provisioned(client, world, oidc_on, settings):
    settings.OIDC_PROVISION_DOMAINS = ["acme.example"]
    for email in ("someone@evil.example", "someone@acme.example.evil.example"):
        oidc_on.sign_in_as(email)
        assert sign_in(client, oidc_on).status_code == 403
    oidc_on.sign_in_as("unverified@acme.example", verified=False)
    assert sign_in(client, oidc_on).status_code == 403
    assert not get_user_model().objects.filter(email__icontains="example.evil").exists()
    assert not get_user_model().objects.filter(email="unverified@acme.example").exists()


# --- a token or a flow that does not check out ----------------------------------------------------
@pytest.mark.parametrize(
    "tamper,overrides",
    [
        ("signature", {}),  # one bit of the RS256 signature flipped
        ("other_key", {}),  # signed with a key the JWKS does not hold, under its key id
        ("claims", {}),  # e-mail changed after signing
        ("hs256", {}),  # HS256 with the client secret: only RS256 is accepted
        ("", {"aud": "another-client"}),
        ("", {"iss": "http://127.0.0.1:1/realms/other"}),
        ("", {"nonce": "not-the-nonce-parley-sent"}),
        ("", {"exp": 1_600_000_000, "iat": 1_599_999_000}),  # expired long ago
    ],
    ids=["signature", "other-key", "forged-claims", "hs256", "audience", "issuer", "nonce", "expired"],
)
def test_invalid_id_token_is_refused_without_a_session(client, world, oidc_on, tamper, overrides):
    oidc_on.sign_in_as("admin-a@example.com")
    oidc_on.tamper = tamper
    oidc_on.claim_overrides = overrides
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 400
    assert "The sign-in could not be verified" in resp.content.decode()
    assert signed_in_user(client) is None
    assert client.get("/admin/bots/bot/").status_code == 302
    row = last_audit("signin.refused")
    assert row.detail["reason"] == "token_invalid" and row.detail["method"] == "oidc"
    assert not AuditLog.objects.filter(action="signin.succeeded").exists()


def test_bad_state_is_refused(client, world, oidc_on):
    oidc_on.sign_in_as("admin-a@example.com")
    back = at_provider(start(client))
    parts = urlsplit(back)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    resp = client.get(CALLBACK + "?" + urlencode({**q, "state": "forged-state"}))
    assert resp.status_code == 400
    assert "This sign-in has expired" in resp.content.decode()
    assert signed_in_user(client) is None
    assert oidc_on.server.requests_to(OIDC + "/token") == []  # the code was never exchanged

    # The real callback opened in another browser (no flow started there) is refused too.
    other = Client()
    resp = come_back(other, back)
    assert resp.status_code == 400
    assert other.session.get("_auth_user_id") is None
    # A callback with neither code nor state.
    assert client.get(CALLBACK).status_code == 400
    assert last_audit("signin.refused").detail["reason"] == "state"


def test_state_is_single_use(client, world, oidc_on):
    oidc_on.sign_in_as("admin-a@example.com")
    back = at_provider(start(client))
    assert come_back(client, back).status_code == 302
    client.logout()
    assert come_back(client, back).status_code == 400  # replaying the same callback


def test_access_denied_at_the_provider(client, world, oidc_on):
    oidc_on.deny = True
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 403
    assert "Sign-in was cancelled" in resp.content.decode()
    assert signed_in_user(client) is None
    assert last_audit("signin.refused").detail["reason"] == "denied"


def test_provider_down_or_broken(client, world, oidc_on, settings):
    oidc_on.sign_in_as("admin-a@example.com")
    oidc_on.token_status = 500
    resp = sign_in(client, oidc_on)
    assert resp.status_code == 502
    assert "The identity provider refused the sign-in" in resp.content.decode()
    assert signed_in_user(client) is None

    gone = FakeServer().start()
    gone_url = gone.url
    gone.stop()  # nothing listens there any more
    settings.OIDC_ISSUER = gone_url + "/realms/parley"
    resp = client.get("/auth/oidc/start/")
    assert resp.status_code == 502
    assert "The identity provider cannot be reached" in resp.content.decode()


def test_discovery_that_does_not_check_out(client, world, oidc_on, settings):
    idp = oidc_on
    # The discovery document names another issuer than the one configured.
    settings.OIDC_DISCOVERY_URL = idp.issuer + "/.well-known/openid-configuration"
    settings.OIDC_ISSUER = idp.server.url + "/realms/impostor"
    resp = client.get("/auth/oidc/start/")
    assert resp.status_code == 502 and "refused the sign-in" in resp.content.decode()
    # Discovery answers with something that is not JSON.
    settings.OIDC_ISSUER = idp.issuer
    idp.server.route("GET", "/realms/parley/.well-known/", lambda req: (200, "<html>maintenance</html>"))
    resp = client.get("/auth/oidc/start/")
    assert resp.status_code == 502 and "refused the sign-in" in resp.content.decode()
    assert idp.server.requests_to(OIDC + "/auth") == []


def test_starts_are_rate_limited_per_client_address(client, world, oidc_on, settings):
    settings.OIDC_START_LIMIT_PER_IP = 2
    oidc_on.sign_in_as("admin-a@example.com")
    start(client)
    start(client)
    before = len(oidc_on.server.requests)
    resp = client.get("/auth/oidc/start/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert resp.status_code == 429 and "尝试次数过多" in resp.content.decode()
    assert len(oidc_on.server.requests) == before  # the provider was not asked
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.get("/auth/oidc/start/").status_code == 302


def test_the_client_secret_never_reaches_logs_or_pages(client, world, oidc_on, caplog):
    caplog.set_level(logging.DEBUG)
    secret = oidc_on.client_secret
    pages = []
    oidc_on.sign_in_as("admin-a@example.com")
    pages.append(sign_in(client, oidc_on))
    client.logout()
    oidc_on.tamper = "signature"
    pages.append(sign_in(client, oidc_on))
    oidc_on.tamper = ""
    oidc_on.token_status = 500
    pages.append(sign_in(client, oidc_on))
    # The token endpoint got the secret (Basic auth), so the flows really used it …
    auths = [r.headers.get("Authorization", "") for r in oidc_on.server.requests_to(OIDC + "/token")]
    assert len(auths) == 3
    assert all(secret in base64.b64decode(a.removeprefix("Basic ")).decode() for a in auths)
    # … and it is nowhere in what Parley logged or showed.
    assert any(r.getMessage() == "oidc sign-in refused" for r in caplog.records)
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(vars(record))
    for page in pages:
        assert secret not in page.content.decode()
    assert not AuditLog.objects.filter(detail__icontains=secret).exists()


# --- password sign-in and the policy -------------------------------------------------------------
def login_form(client, username, password):
    return client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})


def test_password_sign_in_still_works_and_is_audited(client, world, oidc_on):
    resp = login_form(client, "admin-a", "wrong-password")
    assert resp.status_code == 200 and signed_in_user(client) is None
    row = last_audit("signin.refused")
    assert row.detail == {"method": "password", "via": "admin", "reason": "invalid_credentials"}
    assert row.target == "admin-a"

    resp = login_form(client, "admin-a", PASSWORD)
    assert resp.status_code == 302 and signed_in_user(client) == str(world["admin_a"].pk)
    rows = AuditLog.objects.filter(action="signin.succeeded")
    assert rows.count() == 1  # once, not once per check
    assert rows[0].actor == world["admin_a"] and rows[0].detail == {"method": "password", "via": "admin"}

    # The API's password token endpoint is audited the same way.
    assert client.post("/api/v1/auth/token/", {"username": "admin-a", "password": PASSWORD}).status_code == 200
    assert last_audit("signin.succeeded").detail == {"method": "password", "via": "api"}


def test_non_staff_password_sign_in_to_the_admin_is_refused_and_audited(client, world):
    get_user_model().objects.create_user("clerk", "clerk@example.com", PASSWORD)
    resp = login_form(client, "clerk", PASSWORD)
    assert resp.status_code == 200 and signed_in_user(client) is None
    assert last_audit("signin.refused").detail["reason"] == "not_staff"
    assert not AuditLog.objects.filter(action="signin.succeeded").exists()


def test_password_sign_in_off_for_non_superusers(client, world, oidc_on, settings):
    settings.PASSWORD_SIGNIN = "superusers"
    page = client.get("/admin/login/").content.decode()
    assert "Password sign-in is for superusers only" in page and "Sign in with Keycloak" in page

    resp = login_form(client, "admin-a", PASSWORD)
    assert resp.status_code == 200
    assert "Password sign-in is turned off for this account" in resp.content.decode()
    assert signed_in_user(client) is None
    assert last_audit("signin.refused").detail["reason"] == "password_signin_off"
    # A wrong password says nothing about the policy (no hint that the account exists).
    resp = login_form(client, "admin-a", "wrong-password")
    assert "turned off" not in resp.content.decode()
    # Nor through the API.
    assert client.post("/api/v1/auth/token/", {"username": "admin-a", "password": PASSWORD}).status_code == 401

    # Superusers keep their password; staff sign in through the provider.
    assert login_form(client, "root", PASSWORD).status_code == 302
    client.logout()
    oidc_on.sign_in_as("admin-a@example.com")
    assert sign_in(client, oidc_on).status_code == 302
    assert signed_in_user(client) == str(world["admin_a"].pk)


# --- the API ---------------------------------------------------------------------------------------
def test_an_oidc_session_gets_a_jwt_pair_for_the_api(client, world, oidc_on, settings):
    settings.PASSWORD_SIGNIN = "superusers"  # no password for staff: the session is the way in
    assert client.post("/api/v1/auth/session-token/").status_code == 403  # not signed in
    oidc_on.sign_in_as("admin-a@example.com")
    assert sign_in(client, oidc_on).status_code == 302
    resp = client.post("/api/v1/auth/session-token/")
    assert resp.status_code == 200
    pair = resp.json()
    assert set(pair) == {"access", "refresh"}
    assert client.get("/api/v1/auth/session-token/").status_code == 405

    api = Client()
    tenants = api.get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert tenants.status_code == 200
    assert [t["slug"] for t in tenants.json()["results"]] == ["tenant-a"]
    # A JWT cannot mint more JWTs.
    assert api.post("/api/v1/auth/session-token/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}").status_code == 403
    row = last_audit("signin.token_issued")
    assert row.actor == world["admin_a"] and row.detail["method"] == "oidc"


# --- signing out --------------------------------------------------------------------------------------
def test_signing_out_ends_the_providers_session_too(client, world, oidc_on):
    idp = oidc_on
    idp.sign_in_as("admin-a@example.com")
    assert sign_in(client, idp).status_code == 302 and signed_in_user(client)
    resp = client.post("/admin/logout/")
    assert resp.status_code == 302 and not signed_in_user(client)
    parts = urlsplit(resp["Location"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == idp.server.url + OIDC + "/logout"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["id_token_hint"] == idp.issued_id_tokens[-1]
    assert q["client_id"] == idp.client_id
    assert q["post_logout_redirect_uri"] == "http://127.0.0.1:8000/admin/login/"
    back = httpx.get(resp["Location"], follow_redirects=False, timeout=5)  # the browser at the provider
    assert back.status_code == 302 and back.headers["location"] == q["post_logout_redirect_uri"]
    assert idp.logouts and idp.problems == []
    assert last_audit("signin.logout").actor == world["admin_a"]
    assert client.get("/admin/").status_code == 302  # signed out of Parley


def test_password_sessions_and_providers_without_logout_sign_out_of_parley_only(client, world, oidc_on, settings):
    idp = oidc_on
    assert client.post("/admin/login/", {"username": "admin-a", "password": PASSWORD}).status_code == 302
    resp = client.post("/admin/logout/")
    assert resp.status_code == 302 and resp["Location"] == "/admin/login/"  # Parley only, to the sign-in page
    assert idp.logouts == []

    idp.end_session = False
    idp.sign_in_as("admin-a@example.com")
    assert sign_in(client, idp).status_code == 302
    resp = client.post("/admin/logout/")
    assert resp.status_code == 302 and resp["Location"] == "/admin/login/" and not signed_in_user(client)

    idp.end_session = True
    settings.OIDC_PROVIDER_LOGOUT = False
    assert sign_in(client, idp).status_code == 302
    assert client.post("/admin/logout/").status_code == 302 and idp.logouts == []
    # A bookmarked sign-out link (GET) lands on the sign-in page too, never on a 405.
    assert sign_in(client, idp).status_code == 302
    by_link = client.get("/admin/logout/")
    assert by_link.status_code == 302 and by_link["Location"] == "/admin/login/" and not signed_in_user(client)
    assert idp.logouts == []
