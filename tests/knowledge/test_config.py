"""Config as code: a tenant's knowledge bases with documents (paths relative to the YAML file, or
URLs) and a bot's knowledge bases; re-applying an unchanged file indexes nothing again."""

from __future__ import annotations

import shutil

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.bots.models import Bot
from apps.knowledge.models import Chunk, Document, KnowledgeBase
from tests.fakes.server import Response
from tests.knowledge.conftest import FILES

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = """
tenants:
  - slug: acme
    name: ACME Corp
    models:
      - name: embed
        purpose: embedding
        provider: openai
        endpoint: {embed_url}
        api_key: sk-embed
        model: fake-embed
    knowledge_bases:
      - name: Handbook
        embedding_model: embed
        documents:
          - docs/handbook.docx
          - docs/support.md
          - {page_url}
    bots:
      - slug: helpdesk
        name: Helpdesk
        knowledge_bases: [Handbook]
        retrieval_threshold: 0.25
        knowledge_fallback: general
"""


@pytest.fixture
def project(tmp_path, fake_embeddings, fake_server):
    (tmp_path / "docs").mkdir()
    for name in ("handbook.docx", "support.md"):
        shutil.copy(FILES / name, tmp_path / "docs" / name)
    html = (FILES / "shipping.html").read_bytes()
    fake_server.route("GET", "/faq", lambda req: Response(200, html, {"Content-Type": "text/html"}))
    path = tmp_path / "config" / "parley.yaml"
    path.parent.mkdir()
    # The documents live beside the config folder: relative paths start at the file's own folder.
    text = CONFIG.replace("docs/", "../docs/").format(embed_url=fake_embeddings.url, page_url=fake_server.url + "/faq")
    path.write_text(text)
    return path


def apply(path, capsys) -> str:
    call_command("apply", "-f", str(path))
    return capsys.readouterr().out


def test_apply_creates_knowledge_bases_indexes_documents_and_attaches_bots(project, capsys):
    out = apply(project, capsys)
    assert "created knowledge base acme/Handbook" in out
    kb = KnowledgeBase.objects.get(name="Handbook")
    assert kb.embedding_model.name == "embed"
    docs = list(kb.documents.order_by("id"))
    assert [d.state for d in docs] == ["ready"] * 3, [d.error for d in docs]
    assert docs[0].filename == "../docs/handbook.docx" and docs[2].kind == "url"
    assert Chunk.objects.filter(knowledge_base=kb).exclude(vector=b"").exists()
    bot = Bot.objects.get(slug="helpdesk")
    assert list(bot.knowledge_bases.all()) == [kb]
    assert (bot.retrieval_threshold, bot.knowledge_fallback) == (0.25, "general")


def test_reapplying_an_unchanged_file_indexes_nothing(project, capsys, fake_embeddings):
    apply(project, capsys)
    generations = dict(Document.objects.values_list("id", "generation"))
    embedded = len(fake_embeddings.requests)
    out = apply(project, capsys)
    assert "No changes." in out
    assert dict(Document.objects.values_list("id", "generation")) == generations
    assert len(fake_embeddings.requests) == embedded


def test_a_changed_file_is_indexed_again(project, capsys):
    apply(project, capsys)
    md = project.parent.parent / "docs" / "support.md"
    md.write_text(md.read_text() + "\n## Gift cards\nGift cards never expire.\n")
    out = apply(project, capsys)
    assert "updated document acme/Handbook: ../docs/support.md (changed)" in out
    assert Chunk.objects.filter(text__contains="Gift cards never expire").exists()


def test_a_missing_document_or_unknown_name_changes_nothing_and_says_where(project, capsys):
    text = project.read_text()
    project.write_text(text.replace("../docs/support.md", "../docs/missing.md").replace("[Handbook]", "[Manual]"))
    with pytest.raises(CommandError) as err:
        call_command("apply", "-f", str(project))
    message = str(err.value)
    assert "tenants[0].knowledge_bases[0].documents[1]: no such file ../docs/missing.md" in message
    assert "tenants[0].bots[0].knowledge_bases[0]: no knowledge base 'Manual'" in message
    assert not KnowledgeBase.objects.exists()


def test_export_carries_knowledge_bases(project, capsys):
    apply(project, capsys)
    call_command("export")
    data = yaml.safe_load(capsys.readouterr().out)
    tenant = data["tenants"][0]
    assert tenant["knowledge_bases"][0]["name"] == "Handbook"
    assert tenant["knowledge_bases"][0]["embedding_model"] == "embed"
    assert "../docs/handbook.docx" in tenant["knowledge_bases"][0]["documents"]
    assert tenant["bots"][0]["knowledge_bases"] == ["Handbook"]
    assert tenant["models"][0]["purpose"] == "embedding"
