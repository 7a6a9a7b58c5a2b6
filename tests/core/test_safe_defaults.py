"""Safe defaults (docs/security.md): /metrics needs its token in production unless made public on
purpose, the API schema needs a sign-in, every page carries a Content-Security-Policy, and signing in
and out lands on the admin's pages, never on a 404 or a 405."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.factories import PASSWORD, make_bot, make_channel, make_tenant, make_user

ROOT = Path(__file__).resolve().parents[2]


def _settings_of(tmp_path: Path, *, production: bool, names: list[str], **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "PARLEY_", "DJANGO_"))}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PARLEY_VAR_DIR=str(tmp_path), **env)
    if production:
        base.update(
            DATABASE_URL="postgres://parley@127.0.0.1:9/parley",
            REDIS_URL="redis://127.0.0.1:9/0",
            SECRET_KEY="pK3v9-Xq2LmZ8rT1wY6nB4cF0hJ7sD5gA_eU2iO9kP1lQ3zX8vC6bN4mR7tW0yE5",
            PARLEY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        )
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(600)  # three fresh processes set Django up; slow on a busy machine
def test_metrics_are_private_by_default_in_production_only(tmp_path):
    names = ["PARLEY_METRICS_PUBLIC"]
    assert _settings_of(tmp_path, production=True, names=names) == {"PARLEY_METRICS_PUBLIC": False}
    assert _settings_of(tmp_path, production=False, names=names) == {"PARLEY_METRICS_PUBLIC": True}
    on_purpose = _settings_of(tmp_path, production=True, names=names, PARLEY_METRICS_PUBLIC="true")
    assert on_purpose == {"PARLEY_METRICS_PUBLIC": True}


@pytest.mark.django_db
def test_metrics_without_a_token_in_production_say_what_to_set(client, settings):
    settings.PARLEY_METRICS_PUBLIC, settings.PARLEY_METRICS_TOKEN = False, ""
    make_bot(make_tenant("acme-secret-co"))
    refused = client.get("/metrics")
    assert refused.status_code == 403 and b"PARLEY_METRICS_TOKEN" in refused.content
    assert b"acme-secret-co" not in refused.content
    settings.PARLEY_METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
    settings.PARLEY_METRICS_PUBLIC, settings.PARLEY_METRICS_TOKEN = True, ""
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_the_api_schema_needs_a_sign_in(client):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(make_user("alice", tenant=make_tenant("acme")))
    response = client.get("/api/schema/")
    assert response.status_code == 200 and b"openapi" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/admin/login/", "/healthz", "/setup/", "/api/v1/bots/", "/no-such-page/"])
def test_every_page_has_a_content_security_policy(client, path):
    make_user("root", superuser=True)  # set up: no redirect to the setup page
    policy = client.get(path)["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert ("'unsafe-eval'" in policy) == path.startswith("/admin/")  # the admin theme's Alpine.js only
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1]


@pytest.mark.django_db
def test_the_admin_pages_have_their_policy_and_the_chat_page_its_own(client):
    client.force_login(make_user("root", superuser=True))
    policy = client.get("/admin/")["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-eval'" in policy
    make_channel(
        make_bot(make_tenant("acme")), platform="web", key="acme-web", allowed_origins="https://shop.example\n"
    )
    assert client.get("/chat/acme-web/")["Content-Security-Policy"] == "frame-ancestors 'self' https://shop.example"


@pytest.mark.django_db
def test_signing_in_lands_on_the_admin_and_signing_out_on_the_sign_in_page(client):
    make_user("root", superuser=True)
    signed_in = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    by_link = client.get("/admin/logout/")  # a bookmarked sign-out link
    assert by_link.status_code == 302 and by_link["Location"] == "/admin/login/"
    assert client.get("/admin/").status_code == 302  # signed out
    client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    by_button = client.post("/admin/logout/")
    assert by_button.status_code == 302 and by_button["Location"] == "/admin/login/"
    assert client.get(by_button["Location"]).status_code == 200
