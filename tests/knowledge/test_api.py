"""The REST API: list knowledge bases and documents, upload, state, delete — tenant-scoped."""

from __future__ import annotations

import pytest

from apps.knowledge.models import Chunk, Document, KnowledgeBase
from tests.factories import make_bot, make_tenant, make_user
from tests.knowledge.conftest import FILES, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def auth(client, tenant):
    from tests.api.test_api import jwt

    make_user("kb-admin", tenant=tenant, role="admin")
    return jwt(client, "kb-admin")


def test_upload_shows_state_and_lists_within_the_tenant(client, auth, kb):
    with (FILES / "handbook.pdf").open("rb") as fh:
        resp = client.post("/api/v1/documents/", {"knowledge_base": kb.pk, "file": fh}, **auth)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["state"] == "ready" and body["pages"] == 3 and body["chunks"] >= 3 and body["title"] == "Store handbook"
    listed = client.get(f"/api/v1/documents/?knowledge_base={kb.pk}", **auth).json()["results"]
    assert [d["id"] for d in listed] == [body["id"]]
    kbs = client.get("/api/v1/knowledge-bases/", **auth).json()["results"]
    assert kbs[0]["name"] == "Handbook" and kbs[0]["documents"] == 1


def test_text_and_url_sources_and_bad_input_is_a_400(client, auth, kb):
    resp = client.post(
        "/api/v1/documents/",
        {"knowledge_base": kb.pk, "title": "Hours", "text": "# Hours\nNine to five."},
        content_type="application/json",
        **auth,
    )
    assert resp.status_code == 201 and resp.json()["state"] == "ready"
    resp = client.post("/api/v1/documents/", {"knowledge_base": kb.pk, "file": _file("x.exe", b"MZ")}, **auth)
    assert resp.status_code == 400 and "not supported" in str(resp.json()["file"])
    resp = client.post("/api/v1/documents/", {"knowledge_base": kb.pk}, content_type="application/json", **auth)
    assert resp.status_code == 400
    resp = client.post(
        "/api/v1/documents/",
        {"knowledge_base": kb.pk, "url": "ftp://example.com/x"},
        content_type="application/json",
        **auth,
    )
    assert resp.status_code == 400


def test_a_failed_document_says_why(client, auth, kb):
    with (FILES / "broken.pdf").open("rb") as fh:
        body = client.post("/api/v1/documents/", {"knowledge_base": kb.pk, "file": fh}, **auth).json()
    assert body["state"] == "failed" and "PDF" in body["error"]


def test_delete_removes_the_chunks(client, auth, kb):
    doc = upload(kb, "support.md")
    assert client.delete(f"/api/v1/documents/{doc.pk}/", **auth).status_code == 204
    assert not Document.objects.exists() and not Chunk.objects.exists()


def test_other_tenants_are_not_there(client, auth, kb):
    other = make_tenant("globex")
    theirs = KnowledgeBase.objects.create(tenant=other, name="Secret plans")
    doc = upload(theirs, "support.md")
    assert client.get("/api/v1/knowledge-bases/", **auth).json()["results"][0]["name"] == "Handbook"
    assert client.get(f"/api/v1/documents/{doc.pk}/", **auth).status_code == 404
    assert client.delete(f"/api/v1/documents/{doc.pk}/", **auth).status_code == 404
    resp = client.post("/api/v1/documents/", {"knowledge_base": theirs.pk, "file": _file("a.md", b"# x\ny")}, **auth)
    assert resp.status_code == 400
    stranger_bot = make_bot(other, "theirs")
    resp = client.patch(
        f"/api/v1/knowledge-bases/{kb.pk}/", {"bots": [stranger_bot.pk]}, content_type="application/json", **auth
    )
    assert resp.status_code == 400
    assert Document.objects.filter(knowledge_base=theirs).count() == 1


def _file(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)
