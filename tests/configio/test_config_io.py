"""Config as code: apply is idempotent and all-or-nothing, errors name file + path + problem,
and export round-trips without secrets."""

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.bots.models import Bot, KnowledgeEntry
from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db

CONFIG = """
tenants:
  - slug: acme
    name: ACME Corp
    models:
      - name: primary
        provider: openai
        endpoint: https://api.example.com/v1
        api_key: ${ACME_API_KEY}
        model: glm-4-turbo
        max_tokens: 2048
        tier: general
        timeout_s: 3
      - name: backup
        provider: anthropic
        endpoint: https://anthropic.example.com
        api_key: sk-ant-backup-0001
        model: claude-x
    bots:
      - slug: helpdesk
        name: Helpdesk
        system_prompt: You are ACME's helpdesk assistant.
        model: primary
        fallback_models: [backup]
        knowledge:
          - question: What are your opening hours?
            answer: 9:00-18:00, Monday to Friday.
        channels:
          - key: acme-web
            platform: web
            api_base: null
            credentials: {}
"""


def write(tmp_path, text, name="parley.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_apply(path, capsys):
    call_command("apply", "-f", path)
    return capsys.readouterr().out


def test_apply_creates_everything_and_reads_env(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "sk-from-env-1234567890")
    out = run_apply(write(tmp_path, CONFIG), capsys)
    assert "created" in out
    tenant = Tenant.objects.get(slug="acme")
    primary = ModelConfig.objects.get(tenant=tenant, name="primary")
    assert primary.api_key == "sk-from-env-1234567890"
    bot = Bot.objects.get(tenant=tenant, slug="helpdesk")
    assert bot.model == primary
    assert [m.name for m in bot.fallback_configs()] == ["backup"]
    assert KnowledgeEntry.objects.get(bot=bot).answer == "9:00-18:00, Monday to Friday."
    assert Channel.objects.get(key="acme-web").bot == bot


def test_apply_twice_changes_nothing_the_second_time(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "sk-from-env-1234567890")
    path = write(tmp_path, CONFIG)
    run_apply(path, capsys)
    before = {m.pk: m.updated_at for m in ModelConfig.objects.all()}
    out = run_apply(path, capsys)
    assert "No changes." in out
    assert {m.pk: m.updated_at for m in ModelConfig.objects.all()} == before


def test_invalid_file_changes_nothing_and_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "x")
    bad = CONFIG.replace("platform: web", "platform: myspace")
    path = write(tmp_path, bad, "bad.yaml")
    with pytest.raises(CommandError) as err:
        call_command("apply", "-f", path)
    message = str(err.value)
    assert "bad.yaml" in message
    assert "tenants[0].bots[0].channels[0].platform" in message
    assert not Tenant.objects.exists()


def test_unknown_model_reference_and_missing_env_are_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    path = write(tmp_path, CONFIG, "p.yaml")
    with pytest.raises(CommandError) as err:
        call_command("apply", "-f", path)
    assert "tenants[0].models[0].api_key: environment variable ACME_API_KEY is not set" in str(err.value)
    monkeypatch.setenv("ACME_API_KEY", "x")
    path = write(tmp_path, CONFIG.replace("model: primary", "model: nonexistent"), "q.yaml")
    with pytest.raises(CommandError) as err:
        call_command("apply", "-f", path)
    assert "tenants[0].bots[0].model: no model named 'nonexistent'" in str(err.value)
    assert not Tenant.objects.exists()


def test_broken_yaml_names_line(tmp_path):
    path = write(tmp_path, "tenants:\n  - slug: [unclosed\n", "broken.yaml")
    with pytest.raises(CommandError) as err:
        call_command("apply", "-f", path)
    assert "broken.yaml: line" in str(err.value)


def test_export_round_trips_without_secrets(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "sk-from-env-1234567890")
    run_apply(write(tmp_path, CONFIG), capsys)
    call_command("export")
    exported = capsys.readouterr().out
    assert "sk-from-env" not in exported and "sk-ant-backup" not in exported
    data = yaml.safe_load(exported)
    bot = data["tenants"][0]["bots"][0]
    assert bot["model"] == "primary" and bot["fallback_models"] == ["backup"]
    assert bot["knowledge"][0]["question"] == "What are your opening hours?"
    # applying the export changes nothing, and keeps the secrets that it does not contain
    out = run_apply(write(tmp_path, exported, "exported.yaml"), capsys)
    assert "No changes." in out
    assert ModelConfig.objects.get(name="backup").api_key == "sk-ant-backup-0001"


def test_knowledge_follows_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "k")
    run_apply(write(tmp_path, CONFIG), capsys)
    changed = CONFIG.replace("What are your opening hours?", "Where are you?")
    out = run_apply(write(tmp_path, changed, "v2.yaml"), capsys)
    assert "deleted knowledge" in out
    assert list(KnowledgeEntry.objects.values_list("question", flat=True)) == ["Where are you?"]


def test_a_channels_streaming_switch_is_applied_and_exported(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "k")
    run_apply(write(tmp_path, CONFIG), capsys)
    assert Channel.objects.get(key="acme-web").streaming  # on unless the file says otherwise
    run_apply(
        write(tmp_path, CONFIG.replace("credentials: {}", "credentials: {}\n            streaming: false")), capsys
    )
    assert not Channel.objects.get(key="acme-web").streaming
    call_command("export")
    assert yaml.safe_load(capsys.readouterr().out)["tenants"][0]["bots"][0]["channels"][0]["streaming"] is False
