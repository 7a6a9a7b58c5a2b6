"""Hybrid retrieval: BM25 over jieba-segmented tokens, plus embedding similarity when the knowledge
base has an embedding model, fused by reciprocal rank fusion (RRF).

Each knowledge base's live chunks are held in this process as an inverted index (token → chunk
rows, term frequencies) and, with embeddings, one unit-length float32 matrix; they are rebuilt when
the knowledge base's ``version`` moves (a document indexed or deleted), which one small query reads
per question. Scoring is exact: BM25 by accumulating postings with numpy, vectors by one
matrix-vector product (no approximate index: PostgreSQL here has no pgvector, and exact scoring of
100k chunks takes milliseconds — docs/knowledge.md has the figures).

Ranking and the threshold answer different questions. The order is RRF of the two rankings (rank
based, so BM25's unbounded scores and cosine similarities need no common scale). Whether a passage
is relevant at all is its *relevance*, 0–1: the larger of its lexical coverage (the IDF-weighted
share of the question's words it contains; a word the knowledge base has never seen weighs as much
as its rarest word, so a question about something absent scores low) and its cosine similarity.

Only knowledge bases of the bot's own tenant that are attached to the bot are searched: retrieval
never crosses tenants or bots.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings

from apps.core.ttlcache import TTLCache

from . import embeddings
from .models import Chunk, Document, KnowledgeBase
from .services import live_chunks
from .text import estimate_tokens, tokenize

logger = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
RRF_K = 60
#: Candidates taken from each ranking into the fusion.
CANDIDATES = 50
#: Passages put into a prompt at most (also bounded by ``KNOWLEDGE_PROMPT_TOKENS``).
MAX_SOURCES = 6
#: Knowledge-base indexes kept per process.
CACHED_INDEXES = 64


@dataclass
class Hit:
    chunk_id: int
    document_id: int
    knowledge_base_id: int
    score: float = 0.0  # RRF
    relevance: float = 0.0  # 0–1, compared with the bot's threshold
    lexical: float = 0.0  # BM25
    coverage: float = 0.0
    similarity: float | None = None  # cosine, when vectors were used
    lexical_rank: int | None = None
    vector_rank: int | None = None
    title: str = ""
    section: str = ""
    text: str = ""
    url: str = ""
    page: int | None = None
    tokens: int = 0

    def as_record(self, number: int) -> dict[str, Any]:
        """What the reply's Message keeps (the review transcript shows it)."""
        return {
            "n": number,
            "chunk": self.chunk_id,
            "document": self.document_id,
            "knowledge_base": self.knowledge_base_id,
            "title": self.title,
            "section": self.section,
            "url": self.url,
            "page": self.page,
            "score": round(self.score, 5),
            "relevance": round(self.relevance, 3),
            "bm25": round(self.lexical, 3),
            "similarity": None if self.similarity is None else round(self.similarity, 3),
            "excerpt": self.text[:300],
        }


@dataclass
class Retrieval:
    """The outcome for one question: every candidate, and those chosen for the prompt."""

    question: str
    knowledge_bases: list[int] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # ranked, above and below the threshold
    used: list[Hit] = field(default_factory=list)  # above the threshold, within the token budget
    threshold: float = 0.0
    vector_error: str = ""
    elapsed_ms: float = 0.0

    @property
    def searched(self) -> bool:
        return bool(self.knowledge_bases)

    @property
    def found(self) -> bool:
        return bool(self.used)


class _Index:
    """One knowledge base's live chunks, as scored in memory."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.version = kb.version
        rows = list(live_chunks([kb.pk]).order_by("id").values_list("id", "document_id", "tokens", "vector"))
        self.ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self.doc_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        lengths = np.zeros(len(rows), dtype=np.float32)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for row_no, (_, _, tokens, _) in enumerate(rows):
            counts = Counter(tokens.split())
            lengths[row_no] = sum(counts.values())
            for term, tf in counts.items():
                entry = postings.setdefault(term, ([], []))
                entry[0].append(row_no)
                entry[1].append(tf)
        self.lengths = lengths
        self.avgdl = float(lengths.mean()) if len(rows) else 1.0
        self.n = len(rows)
        self.postings = {
            term: (np.asarray(rows_, dtype=np.int32), np.asarray(tfs, dtype=np.float32))
            for term, (rows_, tfs) in postings.items()
        }
        # Vectors, when every live chunk has one of the same size (a half-embedded knowledge base —
        # its model just changed — answers lexically until re-indexing is done).
        self.vectors: np.ndarray | None = None
        sizes = {len(r[3] or b"") for r in rows}
        if rows and len(sizes) == 1 and 0 not in sizes:
            self.vectors = np.vstack([embeddings.from_bytes(r[3]) for r in rows])
        self.embedding_model = kb.embedding_model if kb.embedding_model_id else None

    def idf(self, term: str) -> float:
        df = len(self.postings[term][0]) if term in self.postings else 0
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def bm25(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores and lexical coverage (0–1) of every row for the query ``terms``."""
        scores = np.zeros(self.n, dtype=np.float32)
        covered = np.zeros(self.n, dtype=np.float32)
        unique = list(dict.fromkeys(terms))
        # A word the knowledge base has never seen weighs as much as its rarest word: missing it
        # lowers the coverage as much as missing the most telling word would.
        rare = math.log(1 + (self.n - 1 + 0.5) / 1.5)
        total_weight = sum(self.idf(t) if t in self.postings else rare for t in unique) or 1.0
        norm = K1 * (1 - B + B * self.lengths / (self.avgdl or 1.0))
        for term in unique:
            if term not in self.postings:
                continue
            rows, tfs = self.postings[term]
            idf = self.idf(term)
            scores[rows] += idf * tfs * (K1 + 1) / (tfs + norm[rows])
            covered[rows] += idf
        return scores, covered / total_weight


_cache: OrderedDict[int, _Index] = OrderedDict()
_cache_lock = threading.Lock()


def _index(kb: KnowledgeBase) -> _Index:
    with _cache_lock:
        index = _cache.get(kb.pk)
        if index is not None and index.version == kb.version:
            _cache.move_to_end(kb.pk)
            return index
    index = _Index(kb)
    with _cache_lock:
        _cache[kb.pk] = index
        _cache.move_to_end(kb.pk)
        while len(_cache) > CACHED_INDEXES:
            _cache.popitem(last=False)
    return index


#: Whether a bot has any knowledge base, remembered for a few seconds per process, so that the
#: messages of the many bots without one cost no query; cleared here when an attachment changes.
_attached: TTLCache[int, bool] = TTLCache(lambda: settings.KNOWLEDGE_ATTACHED_CACHE_SECONDS, max_keys=10_000)


def forget_attachments() -> None:
    _attached.clear()


def knowledge_bases_for(bot: Any) -> list[KnowledgeBase]:
    """The knowledge bases ``bot`` answers from: attached to it and of its own tenant."""
    attached = _attached.get(bot.pk, lambda: KnowledgeBase.objects.filter(bots=bot, tenant_id=bot.tenant_id).exists())
    if not attached:
        return []
    return list(
        KnowledgeBase.objects.filter(bots=bot, tenant_id=bot.tenant_id).select_related("embedding_model").order_by("id")
    )


def search_bot(bot: Any, question: str, *, budget: int | None = None) -> Retrieval:
    return search(knowledge_bases_for(bot), question, threshold=bot.retrieval_threshold, budget=budget)


def search(
    kbs: list[KnowledgeBase],
    question: str,
    *,
    threshold: float = 0.0,
    budget: int | None = None,
    mode: str = "hybrid",
) -> Retrieval:
    """Rank the live chunks of ``kbs`` for ``question``; choose those above ``threshold`` that fit
    ``budget`` estimated tokens (``KNOWLEDGE_PROMPT_TOKENS`` by default). ``mode``: ``hybrid``
    (both rankings, where the knowledge base has vectors), ``lexical`` or ``vector`` (one of them:
    the benchmark compares them)."""
    started = time.perf_counter()
    result = Retrieval(question=question, knowledge_bases=[kb.pk for kb in kbs], threshold=threshold)
    terms = tokenize(question)
    if not kbs or not question.strip():
        return result
    lexical: list[tuple[float, float, int, int]] = []  # (bm25, coverage, kb, row)
    vector: list[tuple[float, int, int]] = []  # (cosine, kb, row)
    indexes: dict[int, _Index] = {}
    query_vectors: dict[int, np.ndarray | None] = {}
    for kb in kbs:
        index = indexes[kb.pk] = _index(kb)
        if index.n == 0:
            continue
        if terms and mode != "vector":
            scores, coverage = index.bm25(terms)
            top = _top(scores, CANDIDATES)
            lexical += [(float(scores[r]), float(coverage[r]), kb.pk, int(r)) for r in top if scores[r] > 0]
        config = index.embedding_model
        if mode != "lexical" and index.vectors is not None and config is not None and config.enabled:
            if config.pk not in query_vectors:
                try:
                    query_vectors[config.pk] = embeddings.embed(config, [question])[0]
                except embeddings.EmbeddingError as exc:
                    query_vectors[config.pk] = None
                    result.vector_error = str(exc)
                    logger.warning("query embedding failed; lexical retrieval only", extra={"kb": kb.pk})
            qv = query_vectors[config.pk]
            if qv is not None and qv.shape[0] == index.vectors.shape[1]:
                sims = index.vectors @ qv
                vector += [(float(sims[r]), kb.pk, int(r)) for r in _top(sims, CANDIDATES)]

    hits: dict[tuple[int, int], Hit] = {}

    def hit_for(kb_id: int, row: int) -> Hit:
        key = (kb_id, row)
        if key not in hits:
            index = indexes[kb_id]
            hits[key] = Hit(chunk_id=int(index.ids[row]), document_id=int(index.doc_ids[row]), knowledge_base_id=kb_id)
        return hits[key]

    lexical.sort(key=lambda item: -item[0])
    for rank, (bm25, coverage, kb_id, row) in enumerate(lexical[:CANDIDATES], start=1):
        hit = hit_for(kb_id, row)
        hit.lexical, hit.coverage, hit.lexical_rank = bm25, coverage, rank
        hit.score += 1.0 / (RRF_K + rank)
        hit.relevance = max(hit.relevance, coverage)
    vector.sort(key=lambda item: -item[0])
    for rank, (cosine, kb_id, row) in enumerate(vector[:CANDIDATES], start=1):
        hit = hit_for(kb_id, row)
        hit.similarity, hit.vector_rank = cosine, rank
        hit.score += 1.0 / (RRF_K + rank)
        hit.relevance = max(hit.relevance, cosine)

    ranked = sorted(hits.values(), key=lambda h: (-h.score, -h.relevance, h.chunk_id))
    _fill(ranked[:CANDIDATES])
    result.hits = ranked[:CANDIDATES]
    result.used = choose(result.hits, threshold=threshold, budget=budget)
    result.elapsed_ms = (time.perf_counter() - started) * 1000
    return result


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    if scores.shape[0] <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def _fill(hits: list[Hit]) -> None:
    """Texts, sections and document titles of the hits (one query for the chunks, one for documents)."""
    if not hits:
        return
    chunks = {
        c["id"]: c
        for c in Chunk.objects.filter(pk__in=[h.chunk_id for h in hits]).values(
            "id", "text", "section", "page", "token_count"
        )
    }
    docs = {
        d.pk: d
        for d in Document.objects.filter(pk__in={h.document_id for h in hits}).only(
            "id", "title", "filename", "url", "kind"
        )
    }
    for hit in hits:
        chunk, doc = chunks.get(hit.chunk_id), docs.get(hit.document_id)
        if chunk is not None:
            hit.text, hit.section, hit.page = chunk["text"], chunk["section"], chunk["page"]
            hit.tokens = chunk["token_count"] or estimate_tokens(chunk["text"])
        if doc is not None:
            hit.title = doc.display_title
            hit.url = doc.url if doc.kind == Document.Kind.URL else ""


def choose(hits: list[Hit], *, threshold: float, budget: int | None = None) -> list[Hit]:
    """The best hits at or above ``threshold`` whose texts fit ``budget`` estimated tokens together."""
    budget = settings.KNOWLEDGE_PROMPT_TOKENS if budget is None else budget
    chosen: list[Hit] = []
    spent = 0
    for hit in hits:
        if hit.relevance < threshold or not hit.text:
            continue
        if spent + hit.tokens > budget:
            continue
        chosen.append(hit)
        spent += hit.tokens
        if len(chosen) >= MAX_SOURCES:
            break
    return chosen


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
    _attached.clear()
