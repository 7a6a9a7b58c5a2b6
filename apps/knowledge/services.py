"""Knowledge-base writes: adding, changing and deleting documents, and indexing them.

Indexing runs as a background task (``tasks.index_document``, the ``default`` queue; in-process on
the embedded default). It converts the source, splits it, and writes the chunks of a new generation
in batches — each batch its own short transaction, the progress ("indexing 40 of 200") stored with
it — so a 200-page PDF neither holds a database lock nor keeps other work waiting. The previous
generation keeps answering until the new one is complete; then one UPDATE switches to it and the
old chunks are deleted. A task whose generation is no longer the document's (the document changed
or was deleted meanwhile) stops at its next batch and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.tasks import enqueue

from . import embeddings
from .chunking import split_blocks
from .converters import ConversionError, convert, format_of, supported_extensions
from .fetch import FetchError, fetch
from .models import Chunk, Document, KnowledgeBase
from .text import estimate_tokens, tokenize

logger = logging.getLogger(__name__)


class DocumentRejected(ValueError):
    """An upload or source that cannot become a document (the message says why, for a 4xx)."""


def check_upload(filename: str, size: int, content_type: str = "") -> str:
    """The format of an upload, or ``DocumentRejected`` (unsupported type, too large, empty)."""
    fmt = format_of(filename, content_type)
    if fmt is None:
        raise DocumentRejected(
            _("%(name)s: this file type is not supported (supported: %(list)s).")
            % {"name": filename or "?", "list": supported_extensions()}
        )
    if size > settings.KNOWLEDGE_MAX_DOCUMENT_BYTES:
        raise DocumentRejected(
            _("%(name)s is larger than %(limit)s MB.")
            % {"name": filename, "limit": settings.KNOWLEDGE_MAX_DOCUMENT_BYTES // (1024 * 1024)}
        )
    if size == 0:
        raise DocumentRejected(_("%(name)s is empty.") % {"name": filename})
    return fmt


def add_file(kb: KnowledgeBase, *, filename: str, data: bytes, content_type: str = "", title: str = "") -> Document:
    check_upload(filename, len(data), content_type)
    doc = Document(
        knowledge_base=kb,
        kind=Document.Kind.FILE,
        filename=filename[:300],
        content_type=content_type[:200],
        data=data,
        title=title[:300],
    )
    doc.content_hash = doc.compute_hash()
    doc.save()
    schedule_index(doc)
    return doc


def add_text(kb: KnowledgeBase, *, title: str, text: str) -> Document:
    if not text.strip():
        raise DocumentRejected(_("The text is empty."))
    doc = Document(knowledge_base=kb, kind=Document.Kind.TEXT, title=title[:300], text=text)
    doc.content_hash = doc.compute_hash()
    doc.save()
    schedule_index(doc)
    return doc


def add_url(kb: KnowledgeBase, *, url: str, title: str = "", refresh_hours: int = 0) -> Document:
    if not url.lower().startswith(("http://", "https://")):
        raise DocumentRejected(_("Only http and https addresses can be fetched."))
    doc = Document.objects.create(
        knowledge_base=kb, kind=Document.Kind.URL, url=url, title=title[:300], refresh_hours=refresh_hours
    )
    schedule_index(doc)
    return doc


def source_changed(doc: Document) -> bool:
    """Store the source's hash; True when it differs from what the live chunks were made from."""
    if doc.kind == Document.Kind.URL:
        return False  # known only once fetched: the task compares
    doc.content_hash = doc.compute_hash()
    return doc.content_hash != doc.indexed_hash


def schedule_index(doc: Document, *, force: bool = False) -> None:
    """Queue (re-)indexing of ``doc`` as a new generation; ``force``: even if its source is unchanged."""
    with transaction.atomic():
        Document.objects.filter(pk=doc.pk).update(
            generation=F("generation") + 1,
            state=Document.State.QUEUED,
            progress_done=0,
            progress_total=0,
            error="",
        )
        doc.refresh_from_db(fields=["generation", "state", "progress_done", "progress_total", "error"])
        enqueue(_index_task(), doc.pk, doc.generation, force)


def _index_task() -> Any:
    from .tasks import index_document

    return index_document


def reindex_knowledge_base(kb: KnowledgeBase) -> int:
    """Every document of ``kb`` indexed again (its embedding model changed). Returns how many."""
    docs = list(kb.documents.all())
    for doc in docs:
        schedule_index(doc, force=True)
    return len(docs)


def _current(doc_id: int, generation: int) -> Document | None:
    return (
        Document.objects.select_related("knowledge_base__embedding_model")
        .filter(pk=doc_id, generation=generation)
        .first()
    )


def _progress(doc_id: int, generation: int, **fields: Any) -> bool:
    """Store progress if ``generation`` is still the document's; False: it is not (stop)."""
    return bool(Document.objects.filter(pk=doc_id, generation=generation).update(**fields))


def _fail(doc_id: int, generation: int, error: str) -> None:
    _progress(doc_id, generation, state=Document.State.FAILED, error=error[:2000])
    Chunk.objects.filter(document_id=doc_id, generation=generation).delete()
    logger.info("document indexing failed", extra={"document": doc_id, "error": error[:200]})


def index_document(doc_id: int, generation: int, force: bool = False) -> str:
    """Build generation ``generation`` of the document's chunks. Returns what happened: ``ready``,
    ``unchanged``, ``failed``, ``stale`` (the document changed or was deleted meanwhile)."""
    doc = _current(doc_id, generation)
    if doc is None:
        return "stale"
    kb = doc.knowledge_base
    config = kb.embedding_model if kb.embedding_model_id and kb.embedding_model.enabled else None
    stamp = embeddings.model_stamp(config)
    _progress(doc_id, generation, state=Document.State.INDEXING)

    if doc.kind == Document.Kind.URL:
        try:
            body, content_type = fetch(doc.url)
        except FetchError as exc:
            _fail(doc_id, generation, str(exc))
            return "failed"
        doc.data, doc.content_type = body, content_type[:200]
        doc.content_hash = hashlib.sha256(body).hexdigest()
        if not _progress(
            doc_id,
            generation,
            data=body,
            content_type=doc.content_type,
            content_hash=doc.content_hash,
            fetched_at=timezone.now(),
        ):
            return "stale"
    else:
        doc.content_hash = doc.compute_hash()

    unchanged = (
        not force
        and doc.live_generation
        and doc.content_hash == doc.indexed_hash
        and stamp == doc.indexed_embedding
        and Chunk.objects.filter(document_id=doc_id, generation=doc.live_generation).exists()
    )
    if unchanged:
        # Nothing to redo: the live chunks stay, under the new generation number.
        with transaction.atomic():
            Chunk.objects.filter(document_id=doc_id, generation=doc.live_generation).update(generation=generation)
            if not _progress(doc_id, generation, state=Document.State.READY, live_generation=generation, error=""):
                transaction.set_rollback(True)
                return "stale"
        return "unchanged"

    if doc.kind == Document.Kind.TEXT:
        fmt = "markdown"
    elif doc.kind == Document.Kind.URL and "html" in doc.content_type.lower():
        fmt = "html"
    else:
        fmt = format_of(doc.filename or doc.url, doc.content_type)
    if fmt is None:
        _fail(
            doc_id,
            generation,
            _("This file type is not supported (supported: %(list)s).") % {"list": supported_extensions()},
        )
        return "failed"
    try:
        converted = convert(doc.source_bytes(), fmt=fmt)
    except ConversionError as exc:
        _fail(doc_id, generation, str(exc))
        return "failed"
    pieces = split_blocks(converted.blocks, target=settings.KNOWLEDGE_CHUNK_TOKENS)
    if not pieces:
        _fail(doc_id, generation, _("No text was found in this document."))
        return "failed"
    title_update = {"title": converted.title[:300]} if converted.title and not doc.title else {}
    if not _progress(
        doc_id, generation, progress_total=len(pieces), progress_done=0, pages=converted.pages, **title_update
    ):
        return "stale"

    batch = max(1, settings.KNOWLEDGE_EMBED_BATCH)
    for start in range(0, len(pieces), batch):
        part = pieces[start : start + batch]
        vectors = None
        if config is not None:
            try:
                vectors = embeddings.embed(config, [_embedding_text(p.section, p.text) for p in part])
            except embeddings.EmbeddingError as exc:
                _fail(doc_id, generation, str(exc))
                return "failed"
        rows = [
            Chunk(
                document_id=doc_id,
                knowledge_base_id=kb.pk,
                generation=generation,
                position=start + offset,
                section=piece.section,
                page=piece.page,
                text=piece.text,
                tokens=" ".join(tokenize(piece.section + "\n" + piece.text)),
                token_count=estimate_tokens(piece.text),
                vector=embeddings.to_bytes(vectors[offset]) if vectors is not None else b"",
            )
            for offset, piece in enumerate(part)
        ]
        with transaction.atomic():
            if not _progress(doc_id, generation, progress_done=start + len(part)):
                transaction.set_rollback(True)
                Chunk.objects.filter(document_id=doc_id, generation=generation).delete()
                return "stale"
            Chunk.objects.bulk_create(rows)

    with transaction.atomic():
        if not _progress(
            doc_id,
            generation,
            state=Document.State.READY,
            live_generation=generation,
            indexed_hash=doc.content_hash,
            indexed_embedding=stamp,
            indexed_at=timezone.now(),
            error="",
        ):
            transaction.set_rollback(True)
            Chunk.objects.filter(document_id=doc_id, generation=generation).delete()
            return "stale"
        Chunk.objects.filter(document_id=doc_id).exclude(generation=generation).delete()
        bump_version(kb.pk)
    logger.info("document indexed", extra={"document": doc_id, "chunks": len(pieces)})
    return "ready"


def _embedding_text(section: str, text: str) -> str:
    return f"{section}\n{text}" if section else text


def bump_version(kb_id: int) -> None:
    """The chunks that answer for ``kb_id`` changed: retrieval rebuilds its in-process index."""
    KnowledgeBase.objects.filter(pk=kb_id).update(version=F("version") + 1)


def delete_document(doc: Document) -> None:
    """Delete ``doc`` and its chunks (a task still indexing it stops at its next batch). The
    knowledge base's version moves (a post_delete receiver, so the admin's deletes do it too)."""
    doc.delete()


def due_url_documents(now=None) -> list[int]:
    """URL documents whose refresh is due (``refresh_hours`` > 0, last fetched that long ago)."""
    now = now or timezone.now()
    due = []
    rows = Document.objects.filter(kind=Document.Kind.URL, refresh_hours__gt=0).exclude(
        state__in=[Document.State.QUEUED, Document.State.INDEXING]
    )
    for doc in rows.only("id", "refresh_hours", "fetched_at"):
        if doc.fetched_at is None or doc.fetched_at + timedelta(hours=doc.refresh_hours) <= now:
            due.append(doc.pk)
    return due


def refresh_urls() -> int:
    """Queue every URL source whose refresh is due; unchanged pages re-index nothing."""
    ids = due_url_documents()
    for doc in Document.objects.filter(pk__in=ids):
        schedule_index(doc)
    return len(ids)


def live_chunks(kb_ids: list[int]) -> Any:
    """The chunks that answer for these knowledge bases: each document's live generation."""
    return Chunk.objects.filter(knowledge_base_id__in=kb_ids, generation=F("document__live_generation")).filter(
        ~Q(document__live_generation=0)
    )
