"""Documents in: real files converted, split along their structure, indexed in the background;
state shown; re-indexed on change; deleted with their chunks."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from apps.knowledge import services
from apps.knowledge.models import Chunk, Document, KnowledgeBase
from apps.knowledge.services import DocumentRejected, live_chunks
from tests.factories import make_user
from tests.fakes.server import Response
from tests.knowledge.conftest import FILES, upload
from tests.knowledge.pdfgen import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)


def chunks_of(doc: Document) -> list[Chunk]:
    return list(live_chunks([doc.knowledge_base_id]).filter(document=doc).order_by("position"))


@pytest.mark.parametrize(
    ("name", "section", "needle", "page"),
    [
        ("handbook.pdf", "", "two-year warranty", 2),
        ("handbook.docx", "门店服务 › 营业时间", "上午九点开门", None),
        ("slides.pptx", "Regional sales", "| North | 4.1 million |", 2),
        ("prices.xlsx", "Price list", "| Toaster | 45 | 3 |", None),
        ("shipping.html", "Shipping FAQ › 国际运费", "每公斤八十元", None),
        ("support.md", "Support guide › Passwords", "Forgot password", None),
    ],
)
def test_each_format_is_indexed_with_sections_and_positions(kb, name, section, needle, page):
    doc = upload(kb, name)
    assert doc.state == Document.State.READY, doc.error
    chunks = chunks_of(doc)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    match = next(c for c in chunks if needle in c.text)
    assert match.section == section
    assert match.page == page
    assert match.tokens  # segmented once, at indexing


def test_html_keeps_the_page_and_drops_scripts_navigation_and_footer(kb):
    doc = upload(kb, "shipping.html")
    text = "\n".join(c.text for c in chunks_of(doc))
    assert "International parcels arrive" in text
    assert "secret" not in text and "Home | Shop" not in text and "Copyright" not in text
    assert doc.title == "Shipping FAQ"  # from <title>, as no title was given


def test_a_table_is_a_chunk_of_its_own_with_its_header(kb):
    doc = upload(kb, "handbook.docx")
    table = next(c for c in chunks_of(doc) if "| Level | Spaces |" in c.text)
    assert "basement garage" not in table.text
    assert table.section == "Parking"


def test_a_damaged_file_fails_and_says_why_in_the_admin(kb, client, tenant, superuser):
    doc = upload(kb, "broken.pdf")
    assert doc.state == Document.State.FAILED
    assert "PDF" in doc.error
    assert chunks_of(doc) == []
    client.force_login(make_user("ops", tenant=tenant))
    page = client.get(reverse("admin:knowledge_document_changelist")).content.decode()
    assert "Failed: This is not a readable PDF file" in page
    page = client.get(reverse("admin:knowledge_document_change", args=[doc.pk])).content.decode()
    assert "Failed: This is not a readable PDF file" in page


def test_unsupported_or_oversized_uploads_are_refused(kb, settings):
    with pytest.raises(DocumentRejected, match="not supported"):
        services.add_file(kb, filename="virus.exe", data=b"MZ...")
    settings.KNOWLEDGE_MAX_DOCUMENT_BYTES = 10
    with pytest.raises(DocumentRejected, match="larger than"):
        services.add_file(kb, filename="notes.md", data=b"# a long enough file")
    assert not Document.objects.exists()


def test_changed_text_is_indexed_again_and_unchanged_text_is_not(kb):
    doc = services.add_text(kb, title="FAQ", text="# Hours\nWe open at nine.")
    first = chunks_of(doc)
    assert "nine" in first[0].text

    services.schedule_index(doc)  # nothing changed: the same chunk rows keep answering
    doc.refresh_from_db()
    assert doc.state == Document.State.READY
    assert [c.pk for c in chunks_of(doc)] == [c.pk for c in first]

    doc.text = "# Hours\nWe open at ten."
    assert services.source_changed(doc)
    doc.save()
    services.schedule_index(doc)
    now = chunks_of(doc)
    assert "ten" in now[0].text and "nine" not in now[0].text
    assert Chunk.objects.filter(document=doc).count() == len(now)  # the old generation is gone


def test_deleting_a_document_removes_its_chunks(kb):
    doc = upload(kb, "support.md")
    version = KnowledgeBase.objects.get(pk=kb.pk).version
    assert Chunk.objects.filter(document=doc).exists()
    services.delete_document(doc)
    assert not Chunk.objects.filter(document_id=doc.pk).exists()
    assert KnowledgeBase.objects.get(pk=kb.pk).version > version


def test_a_failed_reindex_keeps_the_previous_chunks_answering(kb):
    doc = upload(kb, "support.md")
    before = [c.pk for c in chunks_of(doc)]
    Document.objects.filter(pk=doc.pk).update(data=b"%PDF-1.4 not a pdf", filename="support.pdf")
    doc.refresh_from_db()
    services.schedule_index(doc, force=True)
    doc.refresh_from_db()
    assert doc.state == Document.State.FAILED
    assert [c.pk for c in chunks_of(doc)] == before


def test_embeddings_are_stored_per_chunk_when_the_kb_has_a_model(kb, embedding_model, fake_embeddings, settings):
    settings.KNOWLEDGE_EMBED_BATCH = 2
    kb.embedding_model = embedding_model
    kb.save()
    doc = upload(kb, "handbook.docx")
    chunks = chunks_of(doc)
    assert all(len(c.vector) == 256 * 4 for c in chunks)
    sent = fake_embeddings.requests
    assert len(sent) == (len(chunks) + 1) // 2  # batched
    assert sent[0].headers["Authorization"] == "Bearer sk-embed"
    assert sent[0].json()["model"] == "fake-embed"


def test_an_embedding_outage_fails_the_document_with_a_reason_and_no_secret(kb, embedding_model, fake_embeddings):
    fake_embeddings.fail = 503
    kb.embedding_model = embedding_model
    kb.save()
    doc = upload(kb, "support.md")
    assert doc.state == Document.State.FAILED
    assert "503" in doc.error and "sk-embed" not in doc.error


@pytest.mark.django_db(transaction=True)
def test_a_200_page_pdf_is_indexed_in_batches_without_blocking_other_writes(tenant, bot, settings):
    """In-process (the embedded default's runner): progress moves in steps the admin can show, and
    other work writes to the database meanwhile without waiting for the whole document."""
    settings.TASKS_MODE = "inprocess"
    settings.KNOWLEDGE_EMBED_BATCH = 16
    kb = KnowledgeBase.objects.create(tenant=tenant, name="Big")
    pages = [
        [f"Page {n}. Section {n} of the manual describes procedure number {n} in detail. " * 12] for n in range(200)
    ]
    doc = services.add_file(kb, filename="manual.pdf", data=make_pdf(pages))
    seen: set[str] = set()
    write_ms: list[float] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        doc.refresh_from_db()
        seen.add(doc.state_label())
        started = time.perf_counter()
        KnowledgeBase.objects.filter(pk=kb.pk).update(description=f"touched {len(write_ms)}")
        write_ms.append((time.perf_counter() - started) * 1000)
        if doc.state in (Document.State.READY, Document.State.FAILED):
            break
        time.sleep(0.02)
    assert doc.state == Document.State.READY, doc.error
    assert doc.pages == 200
    assert len(chunks_of(doc)) >= 200
    assert any(label.startswith("Indexing") and " of " in label for label in seen), seen
    assert max(write_ms) < 2000, write_ms
    connection.close()


def test_url_sources_are_fetched_and_refreshed_only_when_due(kb, fake_server):
    html = (FILES / "shipping.html").read_bytes()
    fake_server.route("GET", "/faq", lambda req: Response(200, html, {"Content-Type": "text/html; charset=utf-8"}))
    doc = services.add_url(kb, url=fake_server.url + "/faq", refresh_hours=1)
    doc.refresh_from_db()
    assert doc.state == Document.State.READY, doc.error
    assert any("40 countries" in c.text for c in chunks_of(doc))
    assert services.refresh_urls() == 0  # fetched just now: not due
    Document.objects.filter(pk=doc.pk).update(fetched_at=doc.fetched_at - timedelta(hours=2))
    ids = [c.pk for c in chunks_of(doc)]
    assert services.refresh_urls() == 1
    assert [c.pk for c in chunks_of(doc)] == ids  # same page: nothing re-indexed
    assert len(fake_server.requests_to("/faq")) == 2


def test_url_sources_go_through_the_blocked_network_guard(kb, fake_server, settings):
    settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = "127.0.0.0/8,169.254.0.0/16"
    settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS = ""
    doc = services.add_url(kb, url=fake_server.url + "/faq")
    doc.refresh_from_db()
    assert doc.state == Document.State.FAILED
    assert "may not call" in doc.error
    assert fake_server.requests_to("/faq") == []
