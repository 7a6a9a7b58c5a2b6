"""The admin: uploading documents, their state and chunks, tenant scoping, and "Ask the knowledge
base" (chunks, scores and the prompt that would be sent — nothing sent)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.knowledge.models import Document, KnowledgeBase
from tests.factories import make_bot, make_tenant, make_user
from tests.knowledge.conftest import FILES, upload

pytestmark = pytest.mark.django_db(transaction=True)

MANAGEMENT = {
    "chunks-TOTAL_FORMS": "0",
    "chunks-INITIAL_FORMS": "0",
    "chunks-MIN_NUM_FORMS": "0",
    "chunks-MAX_NUM_FORMS": "0",
}


@pytest.fixture
def admin_client(client, tenant, superuser):
    client.force_login(make_user("owner", tenant=tenant, role="owner"))
    return client


def test_uploading_a_file_in_the_admin_indexes_it_and_shows_its_chunks(admin_client, kb):
    data = (FILES / "handbook.docx").read_bytes()
    response = admin_client.post(
        reverse("admin:knowledge_document_add"),
        {
            "knowledge_base": kb.pk,
            "title": "Staff handbook",
            "kind": "file",
            "refresh_hours": "0",
            "upload": SimpleUploadedFile("handbook.docx", data, content_type="application/octet-stream"),
            **MANAGEMENT,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    doc = Document.objects.get(title="Staff handbook")
    assert doc.state == Document.State.READY
    page = admin_client.get(reverse("admin:knowledge_document_change", args=[doc.pk])).content.decode()
    assert "门店服务 › 营业时间" in page and "上午九点开门" in page
    kb_page = admin_client.get(reverse("admin:knowledge_knowledgebase_change", args=[kb.pk])).content.decode()
    assert "Staff handbook" in kb_page and "Ready" in kb_page


def test_an_unsupported_upload_is_a_form_error_not_a_500(admin_client, kb):
    response = admin_client.post(
        reverse("admin:knowledge_document_add"),
        {
            "knowledge_base": kb.pk,
            "kind": "file",
            "refresh_hours": "0",
            "upload": SimpleUploadedFile("tool.exe", b"MZ\x90\x00", content_type="application/octet-stream"),
            **MANAGEMENT,
        },
    )
    assert response.status_code == 200
    assert "this file type is not supported" in response.content.decode()
    assert not Document.objects.exists()


def test_other_tenants_documents_are_not_there(client, kb, superuser):
    upload(kb, "support.md")
    other = make_tenant("globex")
    client.force_login(make_user("stranger", tenant=other, role="owner"))
    listing = client.get(reverse("admin:knowledge_document_changelist")).content.decode()
    assert "support.md" not in listing and "Handbook" not in listing
    doc = Document.objects.get()
    assert client.get(reverse("admin:knowledge_document_change", args=[doc.pk])).status_code in (302, 404)
    assert client.get(reverse("admin:knowledge_knowledgebase_ask", args=[kb.pk])).status_code in (403, 404)


def test_a_kb_cannot_be_given_another_tenants_bot(admin_client, tenant):
    stranger_bot = make_bot(make_tenant("globex"), "theirs")
    response = admin_client.post(
        reverse("admin:knowledge_knowledgebase_add"), {"tenant": tenant.pk, "name": "KB", "bots": [stranger_bot.pk]}
    )
    assert response.status_code == 200
    assert not KnowledgeBase.objects.filter(name="KB").exists()


def test_ask_the_knowledge_base_shows_chunks_scores_and_the_prompt_and_sends_nothing(
    admin_client, kb, bot, fake_server
):
    bot.system_prompt = "You are the store's assistant."
    bot.save()
    upload(kb, "handbook.docx")
    upload(kb, "support.md")
    response = admin_client.post(
        reverse("admin:knowledge_knowledgebase_ask", args=[kb.pk]), {"question": "你们几点开门？", "bot": bot.pk}
    )
    page = response.content.decode()
    assert response.status_code == 200
    hits = page[page.index('id="ask-hits"') :]
    assert hits.index("上午九点开门") < hits.index("</table>")
    assert "门店服务 › 营业时间" in page
    assert "You are the store&#x27;s assistant." in page
    assert "[1] 员工手册 Staff handbook — 门店服务 › 营业时间" in page  # the numbered source in the prompt
    assert "请根据下面编号的资料回答" in page  # instructions in the question's language
    assert fake_server.requests == []
