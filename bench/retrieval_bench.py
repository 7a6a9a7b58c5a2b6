"""Knowledge-base retrieval: quality and speed.

Quality: the labelled questions of ``retrieval_corpus.py`` (Chinese and English, 268 passages) are
asked in three modes — lexical (BM25 over jieba tokens), vector (the fake embeddings server on
127.0.0.1: hashed character bigrams, a crude model) and hybrid (both, fused by RRF) — and hit@1,
hit@5 and MRR are printed. Speed: ingestion pages/s (a generated 200-page PDF, without and with
embeddings) and query p50/p99 at 10k and 100k chunks (synthetic chunks: words drawn from a
Zipf-like vocabulary, random unit vectors), with the cold index build time.

Runs in a throw-away test database (PostgreSQL when DATABASE_URL is set, else SQLite):

    .venv/bin/python bench/retrieval_bench.py [--sizes 10000,100000] [--queries 200] [--dims 256]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from retrieval_corpus import build  # noqa: E402

from apps.knowledge import embeddings, retrieval, services  # noqa: E402
from apps.knowledge.models import Chunk, Document, KnowledgeBase  # noqa: E402
from apps.knowledge.text import tokenize  # noqa: E402
from tests.factories import make_model, make_tenant  # noqa: E402
from tests.fakes.embeddings import FakeEmbeddings  # noqa: E402
from tests.knowledge.pdfgen import make_pdf  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def quality(kb: KnowledgeBase, questions, key_of: dict[int, str]) -> None:
    print(f"\n## Retrieval quality (268 passages, {len(questions)} questions)\n")
    print("| mode | language | hit@1 | hit@5 | MRR |")
    print("|---|---|---|---|---|")
    for mode in ("lexical", "vector", "hybrid"):
        for language in ("en", "zh", "all"):
            asked = [q for q in questions if language in ("all", q.language)]
            hits1 = hits5 = 0
            rr = 0.0
            for q in asked:
                result = retrieval.search([kb], q.text, threshold=0.0, mode=mode)
                ranked = [key_of.get(h.document_id) for h in result.hits]
                if q.answer in ranked:
                    rank = ranked.index(q.answer) + 1
                    hits1 += rank == 1
                    hits5 += rank <= 5
                    rr += 1 / rank
            n = len(asked)
            print(f"| {mode} | {language} | {hits1 / n:.3f} | {hits5 / n:.3f} | {rr / n:.3f} |")


def ingestion(tenant, embed_model) -> None:
    print("\n## Ingestion (a 200-page PDF, about 250 words a page)\n")
    print("| embeddings | pages | chunks | seconds | pages/s |")
    print("|---|---|---|---|---|")
    rng = random.Random(3)
    words = [
        "policy",
        "return",
        "warranty",
        "delivery",
        "customer",
        "service",
        "store",
        "product",
        "price",
        "refund",
        "order",
        "account",
    ]
    pages = [[" ".join(rng.choice(words) for _ in range(250))] for _ in range(200)]
    data = make_pdf(pages)
    for label, model in (("none", None), ("fake /v1/embeddings", embed_model)):
        kb = KnowledgeBase.objects.create(tenant=tenant, name=f"ingest-{label}", embedding_model=model)
        started = time.perf_counter()
        doc = services.add_file(kb, filename="manual.pdf", data=data)
        doc.refresh_from_db()
        elapsed = time.perf_counter() - started
        assert doc.state == Document.State.READY, doc.error
        chunks = Chunk.objects.filter(document=doc).count()
        print(f"| {label} | {doc.pages} | {chunks} | {elapsed:.2f} | {doc.pages / elapsed:.0f} |")


def synthetic(tenant, size: int, dims: int, embed_model, vocabulary: list[str]) -> KnowledgeBase:
    """``size`` chunks of 60–120 words drawn Zipf-like from ``vocabulary``, with random unit vectors."""
    kb = KnowledgeBase.objects.create(tenant=tenant, name=f"synthetic-{size}", embedding_model=embed_model)
    rng = np.random.default_rng(size)
    weights = 1 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    per_doc = 1000
    lengths = rng.integers(60, 120, size=size)
    drawn = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights)  # all at once: fast
    vectors = rng.standard_normal((size, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    offset = 0
    for start in range(0, size, per_doc):
        doc = Document.objects.create(
            knowledge_base=kb,
            kind=Document.Kind.TEXT,
            title=f"doc {start}",
            text="-",
            state="ready",
            generation=1,
            live_generation=1,
        )
        rows = []
        for position in range(min(per_doc, size - start)):
            n = int(lengths[start + position])
            tokens = " ".join(vocabulary[i] for i in drawn[offset : offset + n])
            offset += n
            rows.append(
                Chunk(
                    document=doc,
                    knowledge_base=kb,
                    generation=1,
                    position=position,
                    text=tokens[:400],
                    tokens=tokens,
                    token_count=n,
                    vector=embeddings.to_bytes(vectors[start + position]),
                )
            )
        Chunk.objects.bulk_create(rows, batch_size=1000)
    services.bump_version(kb.pk)
    kb.refresh_from_db()
    return kb


def speed(tenant, sizes: list[int], queries: list[str], dims: int, embed_model) -> None:
    print(f"\n## Query latency (exact scoring, {dims}-dimensional vectors, index cached in the process)\n")
    print(
        "| chunks | index build s | index MB | lexical p50 ms | lexical p99 ms | hybrid p50 ms | hybrid p99 ms "
        "| of which question embedding p50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    vocabulary = sorted({t for q in queries for t in tokenize(q)})
    vocabulary += [f"w{i}" for i in range(20000)]
    random.Random(5).shuffle(vocabulary)
    for size in sizes:
        kb = synthetic(tenant, size, dims, embed_model, vocabulary)
        retrieval.clear_cache()
        started = time.perf_counter()
        index = retrieval._index(kb)
        build_s = time.perf_counter() - started
        megabytes = (index.vectors.nbytes if index.vectors is not None else 0) / 1e6
        row = [f"{size:,}", f"{build_s:.1f}", f"{megabytes:.0f}"]
        for mode in ("lexical", "hybrid"):
            timings = []
            for q in queries:
                kb.refresh_from_db(fields=["version"])  # as a real question reads it
                started = time.perf_counter()
                retrieval.search([kb], q, threshold=0.0, mode=mode)
                timings.append((time.perf_counter() - started) * 1000)
            row += [f"{statistics.median(timings):.1f}", f"{pct(timings, 99):.1f}"]
        embed_ms = []
        for q in queries:
            started = time.perf_counter()
            embeddings.embed(embed_model, [q])
            embed_ms.append((time.perf_counter() - started) * 1000)
        row.append(f"{statistics.median(embed_ms):.1f}")
        print("| " + " | ".join(row) + " |")
        KnowledgeBase.objects.filter(pk=kb.pk).delete()
        retrieval.clear_cache()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true", help="no corpus, quality or ingestion figures")
    args = parser.parse_args()
    settings.TASKS_MODE = "eager"
    old = setup_databases(verbosity=0, interactive=False)
    print(f"database: {connection.vendor}")
    try:
        with FakeEmbeddings(dims=args.dims) as fake:
            tenant = make_tenant("bench")
            embed_model = make_model(tenant, "embed", purpose="embedding", endpoint=fake.url, model="fake")
            passages, questions = build()
            if args.skip_quality:
                speed(
                    tenant,
                    [int(s) for s in args.sizes.split(",") if s],
                    [q.text for q in questions][: args.queries],
                    args.dims,
                    embed_model,
                )
                return
            kb = KnowledgeBase.objects.create(tenant=tenant, name="corpus", embedding_model=embed_model)
            started = time.perf_counter()
            key_of = {}
            for p in passages:
                doc = services.add_text(kb, title=p.title, text=f"# {p.section}\n{p.text}")
                key_of[doc.pk] = p.key
            print(f"corpus: {len(passages)} passages indexed with embeddings in {time.perf_counter() - started:.1f} s")
            kb.refresh_from_db()
            quality(kb, questions, key_of)
            ingestion(tenant, embed_model)
            if not args.skip_speed:
                asked = [q.text for q in questions][: args.queries]
                speed(tenant, [int(s) for s in args.sizes.split(",") if s], asked, args.dims, embed_model)
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
