from __future__ import annotations

from pathlib import Path

import pytest

from apps.knowledge import retrieval, services
from apps.knowledge.models import Document, KnowledgeBase
from tests.conversations.conftest import (  # noqa: F401 - the pipeline's fixtures, for test_answers.py
    _clear_cache,
    fakeim,
    llm,
    make_setup,
    platform_api,
)
from tests.factories import make_model
from tests.fakes.embeddings import FakeEmbeddings

FILES = Path(__file__).parent / "files"


@pytest.fixture(autouse=True)
def _fresh_indexes():
    """Row ids are reused across tests (rolled back): no index from another test may answer."""
    retrieval.clear_cache()
    yield
    retrieval.clear_cache()


@pytest.fixture
def kb(tenant, bot):
    kb = KnowledgeBase.objects.create(tenant=tenant, name="Handbook")
    kb.bots.add(bot)
    return kb


def upload(kb: KnowledgeBase, name: str, **kw) -> Document:
    doc = services.add_file(kb, filename=name, data=(FILES / name).read_bytes(), **kw)
    doc.refresh_from_db()
    return doc


@pytest.fixture
def fake_embeddings():
    with FakeEmbeddings() as fake:
        yield fake


@pytest.fixture
def embedding_model(tenant, fake_embeddings):
    return make_model(
        tenant, "embed", purpose="embedding", endpoint=fake_embeddings.url, model="fake-embed", api_key="sk-embed"
    )
