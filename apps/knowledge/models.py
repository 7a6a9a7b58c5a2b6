"""Knowledge bases: documents a tenant uploads (or points to), split into chunks that answers cite.

A document's bytes live in the database (no file storage to configure or back up apart); its
chunks carry what lexical retrieval needs (``tokens``, segmented once at indexing) and, when the
knowledge base has an embedding model, a float32 vector. Indexing builds a new *generation* of
chunks while the previous one keeps answering; the switch is one UPDATE (``live_generation``).
"""

from __future__ import annotations

import hashlib

from django.core.validators import MaxValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class KnowledgeBase(models.Model):
    """A tenant's collection of documents, used by the bots it is attached to."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="knowledge_bases")
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    bots = models.ManyToManyField(
        "bots.Bot",
        blank=True,
        related_name="knowledge_bases",
        verbose_name=_("bots"),
        help_text=_("Bots that answer from this knowledge base (bots of the same tenant only)."),
    )
    embedding_model = models.ForeignKey(
        "llm.ModelConfig",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"purpose": "embedding"},
        verbose_name=_("embedding model"),
        help_text=_(
            "An OpenAI-compatible /v1/embeddings model of the tenant (purpose: embedding). Empty: lexical "
            "retrieval only (BM25 with Chinese word segmentation), which needs no API key."
        ),
    )
    #: Bumped whenever the chunks that answer change (a document indexed or deleted): retrieval's
    #: in-process indexes are rebuilt when it moves.
    version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="uniq_kb_name_per_tenant")]
        verbose_name = _("knowledge base")
        verbose_name_plural = _("knowledge bases")

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    """One source of a knowledge base: an uploaded file, pasted text, or a URL."""

    class Kind(models.TextChoices):
        FILE = "file", _("Uploaded file")
        TEXT = "text", _("Pasted text")
        URL = "url", _("Web page (URL)")

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        INDEXING = "indexing", _("Indexing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    knowledge_base = models.ForeignKey(
        KnowledgeBase, on_delete=models.CASCADE, related_name="documents", verbose_name=_("knowledge base")
    )
    title = models.CharField(_("title"), max_length=300, blank=True, help_text=_("Shown in citations."))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.FILE)
    filename = models.CharField(_("file name"), max_length=300, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    data = models.BinaryField(_("file contents"), blank=True, default=b"", editable=False)
    text = models.TextField(_("text"), blank=True, help_text=_("Pasted text (Markdown is understood)."))
    url = models.URLField(_("URL"), max_length=1000, blank=True)
    refresh_hours = models.PositiveIntegerField(
        _("refresh every (hours)"),
        default=0,
        validators=[MaxValueValidator(24 * 365)],
        help_text=_("URL sources only: fetch the page again this often. 0 fetches it once."),
    )
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(_("error"), blank=True)
    content_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the source as last read.")
    indexed_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the source the chunks come from.")
    indexed_embedding = models.CharField(
        max_length=100, blank=True, help_text="The embedding model (id@stamp) the live vectors come from."
    )
    generation = models.PositiveIntegerField(default=0, editable=False)
    live_generation = models.PositiveIntegerField(default=0, editable=False)
    pages = models.PositiveIntegerField(_("pages"), default=0)
    fetched_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(_("indexed at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["knowledge_base", "title", "id"]
        verbose_name = _("document")
        verbose_name_plural = _("documents")

    def __str__(self) -> str:
        return self.display_title

    @property
    def display_title(self) -> str:
        return self.title or self.filename or self.url or f"#{self.pk}"

    def source_bytes(self) -> bytes:
        """The source as stored: the file's bytes, or the pasted text (URLs: the page last fetched)."""
        if self.kind == self.Kind.TEXT:
            return self.text.encode()
        return bytes(self.data or b"")

    def compute_hash(self) -> str:
        return hashlib.sha256(self.source_bytes()).hexdigest()

    def state_label(self) -> str:
        """'Indexing 3 of 12', 'failed: …', 'ready' — what the admin and the API show."""
        if self.state == self.State.INDEXING and self.progress_total:
            return _("Indexing %(done)s of %(total)s") % {"done": self.progress_done, "total": self.progress_total}
        return str(self.get_state_display())


class Chunk(models.Model):
    """A passage of a document: what retrieval ranks and an answer cites."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    generation = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(_("position"), help_text=_("Order within the document, from 0."))
    section = models.CharField(_("section"), max_length=500, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    text = models.TextField(_("text"))
    #: Space-separated lexical tokens (jieba for Chinese, lower-cased words otherwise), section included.
    tokens = models.TextField(blank=True)
    token_count = models.PositiveIntegerField(default=0)
    #: float32 little-endian, unit length; empty when the knowledge base has no embedding model.
    vector = models.BinaryField(blank=True, default=b"")

    class Meta:
        ordering = ["document", "position"]
        indexes = [models.Index(fields=["knowledge_base", "generation"], name="chunk_kb_generation_idx")]
        verbose_name = _("chunk")
        verbose_name_plural = _("chunks")

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"
