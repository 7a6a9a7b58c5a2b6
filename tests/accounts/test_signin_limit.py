"""Limits on password guessing, through the real admin login page and the API's password token
endpoint (real PostgreSQL and the configured cache: Redis in CI): lockouts per username and per
client address, what the person sees, and the audit rows, log lines and metrics left behind."""

from __future__ import annotations

import logging
import time

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from apps.accounts.signin import unlock_signin
from apps.core.models import AuditLog
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-7f3a"
LOCKED_EN = "Too many failed sign-in attempts: signing in is temporarily blocked."
LOCKED_ZH = "登录失败次数过多，暂时无法登录。"
INVALID_EN = "Please enter the correct username and password for a staff account."


@pytest.fixture
def staff(settings):
    settings.PASSWORD_SIGNIN = "all"
    settings.SIGNIN_FAILURES_PER_USERNAME = 3
    settings.SIGNIN_FAILURES_PER_ADDRESS = 8
    settings.SIGNIN_FAILURE_WINDOW_SECONDS = 900
    settings.SIGNIN_LOCKOUT_SECONDS = 900
    make_user("root", superuser=True)  # setup is done: the admin is open
    return make_user("alice")


def sign_in(client, username, password, **extra):
    return client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def page_text(resp) -> str:
    return resp.content.decode()


def rows(action, **detail):
    return list(AuditLog.objects.filter(action=action, **{f"detail__{k}": v for k, v in detail.items()}).order_by("id"))


def metric(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- per username ----------------------------------------------------------------------------------
def test_failures_lock_the_username_and_then_even_the_right_password_is_refused(client, staff):
    wrong_password = {"method": "password", "via": "admin", "reason": "invalid_credentials"}
    failures_before = metric("parley_signin_failures_total", **wrong_password)
    lockouts_before = metric("parley_signin_lockouts_total", scope="username")

    for _ in range(2):
        resp = sign_in(client, "alice", WRONG)
        assert resp.status_code == 200 and INVALID_EN in page_text(resp) and LOCKED_EN not in page_text(resp)
    # The third failure begins the lockout, and the page says so right away.
    resp = sign_in(client, "alice", WRONG)
    assert resp.status_code == 429 and 840 <= int(resp["Retry-After"]) <= 900
    assert LOCKED_EN in page_text(resp) and "Please try again in about 15 minutes." in page_text(resp)

    # While locked the right password does not get in: no session, the same message.
    resp = sign_in(client, "alice", PASSWORD)
    assert resp.status_code == 429 and LOCKED_EN in page_text(resp)
    assert not signed_in(client)
    assert not AuditLog.objects.filter(action="signin.succeeded").exists()

    # Audit: three wrong passwords, one lockout, one attempt refused by it.
    assert len(rows("signin.refused", reason="invalid_credentials")) == 3
    (lockout,) = rows("signin.locked_out")
    assert lockout.target == "alice" and lockout.ip == "127.0.0.1"
    assert lockout.detail == {
        "method": "password",
        "via": "admin",
        "scope": "username",
        "failures": 3,
        "seconds": 900,
    }
    (refused,) = rows("signin.refused", reason="locked")
    assert refused.target == "alice" and refused.detail["via"] == "admin"

    assert metric("parley_signin_failures_total", **wrong_password) - failures_before == 3
    assert metric("parley_signin_failures_total", method="password", via="admin", reason="locked") >= 1
    assert metric("parley_signin_lockouts_total", scope="username") - lockouts_before == 1

    # Other users are not affected.
    assert sign_in(Client(), "root", PASSWORD).status_code == 302


def test_a_lockout_does_not_tell_whether_the_username_exists(client, staff):
    def locked_page(username):
        for _ in range(3):
            resp = sign_in(client, username, WRONG)
        return resp

    real, made_up = locked_page("alice"), locked_page("nobody-here")
    assert real.status_code == made_up.status_code == 429
    assert LOCKED_EN in page_text(real)

    def errors(resp):
        return [str(e) for e in resp.context["form"].non_field_errors()]

    assert errors(real) == errors(made_up)
    assert {r.target for r in rows("signin.locked_out")} == {"alice", "nobody-here"}


def test_the_lock_holds_for_every_address_and_every_spelling(staff):
    # A distributed guess: each failure from a different address still counts for the username.
    for n in range(3):
        sign_in(Client(REMOTE_ADDR=f"198.51.100.{n + 1}"), "alice", WRONG)
    for who, address in (("alice", "203.0.113.50"), ("ALICE", "203.0.113.51"), (" Alice", "2001:db8::1")):
        client = Client(REMOTE_ADDR=address)
        resp = sign_in(client, who, PASSWORD)
        assert LOCKED_EN in page_text(resp), who
        assert not signed_in(client)


def test_the_message_is_in_the_pages_language(client, staff):
    for _ in range(3):
        resp = sign_in(client, "alice", WRONG, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")
    text = page_text(resp)
    assert LOCKED_ZH in text and "请约 15 分钟后再试。" in text
    assert LOCKED_EN not in text
    resp = sign_in(client, "alice", PASSWORD, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8")
    assert LOCKED_EN in page_text(resp) and not signed_in(client)


def test_defaults_are_five_failures_and_fifteen_minutes(client, staff, settings):
    settings.SIGNIN_FAILURES_PER_USERNAME = 5
    for _ in range(4):
        assert LOCKED_EN not in page_text(sign_in(client, "alice", WRONG))
    resp = sign_in(client, "alice", WRONG)
    assert "Please try again in about 15 minutes." in page_text(resp)


def test_a_successful_sign_in_resets_the_username_count(staff):
    for _ in range(2):
        sign_in(Client(), "alice", WRONG)
    ok = Client()
    assert sign_in(ok, "alice", PASSWORD).status_code == 302 and signed_in(ok)
    for _ in range(2):  # two more: four in all, but only two since the success
        resp = sign_in(Client(), "alice", WRONG)
        assert LOCKED_EN not in page_text(resp)
    again = Client()
    assert sign_in(again, "alice", PASSWORD).status_code == 302 and signed_in(again)
    assert not rows("signin.locked_out")


def test_the_lockout_ends_after_its_time(client, staff, settings):
    settings.SIGNIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        resp = sign_in(client, "alice", WRONG)
    assert "about a minute" in page_text(resp)
    deadline = time.monotonic() + 10
    while True:  # wait until the lock has expired, bounded
        resp = sign_in(client, "alice", PASSWORD)
        if resp.status_code == 302 or time.monotonic() > deadline:
            break
        assert LOCKED_EN in page_text(resp)
        time.sleep(0.2)
    assert resp.status_code == 302 and signed_in(client)


def test_an_operator_can_end_a_lockout(client, staff):
    for _ in range(3):
        sign_in(client, "alice", WRONG)
    assert LOCKED_EN in page_text(sign_in(client, "alice", PASSWORD))
    unlock_signin(username="Alice")
    assert sign_in(client, "alice", PASSWORD).status_code == 302 and signed_in(client)


# --- per address -----------------------------------------------------------------------------------
def test_one_address_spraying_usernames_is_locked_out(staff):
    sprayer = Client(REMOTE_ADDR="192.0.2.66")
    for n in range(8):  # one failure per username: no username reaches its limit
        resp = sign_in(sprayer, f"user{n}", WRONG)
    assert LOCKED_EN in page_text(resp)
    (lockout,) = rows("signin.locked_out")
    assert lockout.target == "192.0.2.66" and lockout.detail["scope"] == "address"
    # The address cannot sign in even with a real account's password...
    assert LOCKED_EN in page_text(sign_in(sprayer, "alice", PASSWORD)) and not signed_in(sprayer)
    # ...while alice, elsewhere, can.
    elsewhere = Client(REMOTE_ADDR="192.0.2.67")
    assert sign_in(elsewhere, "alice", PASSWORD).status_code == 302 and signed_in(elsewhere)


def test_ipv6_addresses_count_by_their_64(staff):
    for n in range(8):
        sign_in(Client(REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}"), f"user{n}", WRONG)
    neighbour = Client(REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert LOCKED_EN in page_text(sign_in(neighbour, "alice", PASSWORD))
    other_net = Client(REMOTE_ADDR="2001:db8:1:3::1")
    assert sign_in(other_net, "alice", PASSWORD).status_code == 302


# --- the API ---------------------------------------------------------------------------------------
def token(client, username, password, **extra):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, **extra)


def test_the_api_password_endpoint_shares_the_lock_and_answers_429(client, staff):
    for _ in range(2):
        assert token(client, "alice", WRONG).status_code == 401
    resp = token(client, "alice", WRONG)
    assert resp.status_code == 429
    assert resp.json()["detail"] == LOCKED_EN + " Please try again in about 15 minutes."
    assert 850 <= int(resp["Retry-After"]) <= 900

    resp = token(client, "alice", PASSWORD)  # the right password: still no tokens
    assert resp.status_code == 429 and "access" not in resp.json()
    zh = token(client, "alice", PASSWORD, HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert zh.status_code == 429 and zh.json()["detail"].startswith(LOCKED_ZH)

    # The lock was earned through the API and holds on the admin page too.
    browser = Client()
    assert LOCKED_EN in page_text(sign_in(browser, "alice", PASSWORD)) and not signed_in(browser)

    (lockout,) = rows("signin.locked_out")
    assert lockout.detail["via"] == "api"
    assert len(rows("signin.refused", reason="invalid_credentials", via="api")) == 3
    assert len(rows("signin.refused", reason="locked", via="api")) == 2
    assert metric("parley_signin_failures_total", method="password", via="api", reason="locked") >= 2


# --- logs, and the cache being down -----------------------------------------------------------------
def test_log_lines_name_the_refusal_but_never_the_password(client, staff, caplog):
    caplog.set_level(logging.INFO, logger="apps.accounts.signin")
    for _ in range(4):
        sign_in(client, "alice", WRONG)
    messages = [r.getMessage() for r in caplog.records if r.name == "apps.accounts.signin"]
    assert messages.count("password sign-in refused") == 4
    assert messages.count("password sign-in locked out") == 1
    lockout = next(r for r in caplog.records if r.getMessage() == "password sign-in locked out")
    assert lockout.levelno == logging.WARNING and lockout.scope == "username" and lockout.seconds == 900
    assert [r.reason for r in caplog.records if r.getMessage() == "password sign-in refused"] == [
        "invalid_credentials",
        "invalid_credentials",
        "invalid_credentials",
        "locked",
    ]
    for record in caplog.records:
        assert WRONG not in repr(vars(record)) and WRONG not in record.getMessage()
    assert not AuditLog.objects.filter(detail__icontains=WRONG).exists()


def test_with_the_cache_down_sign_in_fails_open_with_a_warning(client, staff, cache_down, caplog):
    caplog.set_level(logging.WARNING, logger="apps.accounts.signin")
    for _ in range(4):  # past the limit: nothing can be counted, so nothing locks
        resp = sign_in(client, "alice", WRONG)
        assert resp.status_code == 200 and INVALID_EN in page_text(resp)
    assert len(rows("signin.refused", reason="invalid_credentials")) == 4  # still audited
    resp = sign_in(client, "alice", PASSWORD)
    assert resp.status_code == 302 and signed_in(client)
    warnings = [r for r in caplog.records if r.name == "apps.accounts.signin" and r.levelno == logging.WARNING]
    assert warnings and all("sign-in limiter unavailable" in r.getMessage() for r in warnings)


# --- ending a lockout: the user admin's action and the command ----------------------------------------
def test_a_superuser_ends_a_lockout_from_the_user_list(client, staff):
    for _ in range(3):
        sign_in(client, "alice", WRONG)
    assert LOCKED_EN in page_text(sign_in(client, "alice", PASSWORD))

    root = Client()
    root.force_login(staff.__class__.objects.get(username="root"))
    resp = root.post("/admin/auth/user/", {"action": "unlock_signin", "_selected_action": [staff.pk]}, follow=True)
    assert resp.status_code == 200 and "Sign-in unlocked for 1 user(s): alice." in page_text(resp)
    (row,) = rows("signin.unlocked")
    assert row.target == "alice" and row.actor.username == "root"
    assert sign_in(client, "alice", PASSWORD).status_code == 302 and signed_in(client)


def test_the_unlock_command_frees_an_address_and_refuses_nonsense(staff):
    from django.core.management import CommandError, call_command

    sprayer = Client(REMOTE_ADDR="192.0.2.66")
    for n in range(8):
        sign_in(sprayer, f"user{n}", WRONG)
    assert LOCKED_EN in page_text(sign_in(sprayer, "alice", PASSWORD))
    call_command("unlock_signin", address=["192.0.2.66"])
    assert sign_in(sprayer, "alice", PASSWORD).status_code == 302 and signed_in(sprayer)
    assert rows("signin.unlocked")[0].target == "192.0.2.66"
    with pytest.raises(CommandError, match="Not an IP address"):
        call_command("unlock_signin", address=["example.com"])
    with pytest.raises(CommandError, match="Name at least one"):
        call_command("unlock_signin")
