"""With Redis (the cache) unreachable, staff can still sign in and use the admin and the API:
the parts that only use the cache for speed or throttling fall back or let requests through,
instead of answering 500."""

from __future__ import annotations

import logging

import pytest

from tests.factories import PASSWORD, make_tenant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    make_tenant("acme")
    return make_user("root", superuser=True)


def test_admin_sign_in_and_pages_work_without_the_cache(client, root, cache_down):
    assert client.get("/admin/").status_code == 302  # to the login page, not to /setup/ and not a 500
    login = client.get("/admin/login/")
    assert login.status_code == 200
    resp = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert resp.status_code == 302 and resp.url == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/tenants/tenant/").status_code == 200


def test_api_token_and_reads_work_without_the_cache_with_a_warning(client, root, cache_down, caplog):
    caplog.set_level(logging.WARNING, logger="apps.core.throttling")
    resp = client.post("/api/v1/auth/token/", {"username": "root", "password": PASSWORD})
    assert resp.status_code == 200, resp.content
    auth = {"HTTP_AUTHORIZATION": f"Bearer {resp.json()['access']}"}
    tenants = client.get("/api/v1/tenants/", **auth)
    assert tenants.status_code == 200
    assert [t["slug"] for t in tenants.json()["results"]] == ["acme"]
    assert client.get("/api/v1/bots/", HTTP_AUTHORIZATION="Bearer not-a-jwt").status_code == 401
    assert any("API throttling skipped: the cache is unreachable" in r.getMessage() for r in caplog.records)


def test_throttles_still_apply_when_the_cache_is_up(client, root, monkeypatch):
    from apps.core.throttling import UserThrottle

    monkeypatch.setattr(UserThrottle, "THROTTLE_RATES", {**UserThrottle.THROTTLE_RATES, "user": "3/min"})
    token = client.post("/api/v1/auth/token/", {"username": "root", "password": PASSWORD}).json()["access"]
    codes = [client.get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
