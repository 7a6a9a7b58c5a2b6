"""Friction: ``/api/docs/`` was a 404 and ``/api/schema/`` downloaded a file. Swagger UI and ReDoc
are served from Parley itself (no CDN: a server in China or without internet shows them), and the
schema opens in the browser."""

from __future__ import annotations

import re

import pytest

from .conftest import login

pytestmark = pytest.mark.django_db
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_api_docs_are_served_offline_for_signed_in_people(client, setup_done, url):
    login(client, setup_done)
    page = client.get(url, HTTP_ACCEPT=BROWSER)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html[:500]
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
    fetched = ""
    for src in sources:
        resp = client.get(src)
        assert resp.status_code == 200, src
        if not src.startswith("/static/"):
            fetched += resp.content.decode()  # Swagger UI's start script, served by the view
    assert "/api/schema/" in html + fetched


def test_schema_opens_in_the_browser_instead_of_downloading(client, setup_done):
    login(client, setup_done)
    resp = client.get("/api/schema/", HTTP_ACCEPT=BROWSER)
    assert resp.status_code == 200
    assert resp["Content-Type"].split(";")[0] in ("application/json", "text/plain", "text/html")
    assert "attachment" not in resp.get("Content-Disposition", "")
    assert "Parley API" in resp.content.decode()


def test_api_docs_ask_a_stranger_to_sign_in(client, setup_done):
    resp = client.get("/api/docs/", HTTP_ACCEPT=BROWSER)
    assert resp.status_code in (302, 401, 403)
