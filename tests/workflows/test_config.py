"""Workflows in config as code: ``manage.py apply`` creates and updates them (idempotent, secrets
kept when left out), refuses what the admin would refuse with the file path of the problem, and
``manage.py export`` writes them back without the signing secret."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.workflows.models import Workflow

pytestmark = pytest.mark.django_db

CONFIG = """
tenants:
  - slug: acme
    name: ACME Corp
    bots:
      - slug: helpdesk
        name: Helpdesk
    workflows:
      - name: Create ticket
        bot: helpdesk
        trigger: command
        trigger_value: /ticket
        url: https://tickets.acme.example/api/tickets
        payload_template: '{"title": "{{text}}", "reporter": {{user_name}}, "external_id": {{run_id}}}'
        reply_template: Ticket {{id}} created.
        signing_secret: ${TICKETS_SECRET}
        max_retries: 2
      - name: Printer
        trigger: keyword
        trigger_value: printer broken
        url: https://tickets.acme.example/api/printer
        confirmation_required: false
"""


def apply(tmp_path, text, capsys, monkeypatch) -> str:
    monkeypatch.setenv("TICKETS_SECRET", "whsec-from-env-77aa")
    path = tmp_path / "parley.yaml"
    path.write_text(text)
    call_command("apply", "-f", str(path))
    return capsys.readouterr().out


def test_apply_creates_then_changes_nothing_and_keeps_the_secret(tmp_path, capsys, monkeypatch):
    out = apply(tmp_path, CONFIG, capsys, monkeypatch)
    assert "created workflow acme/Create ticket" in out and "created workflow acme/Printer" in out
    ticket = Workflow.objects.get(name="Create ticket")
    assert ticket.bot.slug == "helpdesk" and ticket.signing_secret == "whsec-from-env-77aa" and ticket.max_retries == 2
    assert Workflow.objects.get(name="Printer").bot is None
    assert "No changes." in apply(tmp_path, CONFIG, capsys, monkeypatch)
    without_secret = CONFIG.replace("        signing_secret: ${TICKETS_SECRET}\n", "").replace(
        "max_retries: 2", "max_retries: 4"
    )
    out = apply(tmp_path, without_secret, capsys, monkeypatch)
    assert "updated workflow acme/Create ticket (max_retries)" in out
    ticket.refresh_from_db()
    assert ticket.signing_secret == "whsec-from-env-77aa"


def test_export_round_trips_without_the_secret(tmp_path, capsys, monkeypatch):
    apply(tmp_path, CONFIG, capsys, monkeypatch)
    call_command("export")
    text = capsys.readouterr().out
    assert "whsec-from-env-77aa" not in text
    (tenant,) = yaml.safe_load(text)["tenants"]
    by_name = {w["name"]: w for w in tenant["workflows"]}
    assert by_name["Create ticket"]["bot"] == "helpdesk" and by_name["Printer"]["bot"] is None
    assert "signing_secret" not in by_name["Create ticket"]
    path = tmp_path / "exported.yaml"
    path.write_text(text)
    call_command("apply", "-f", str(path))
    assert "No changes." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (('\'{"title": "{{text}}"', '\'{"title": "{{text}}",,'), "tenants[0].workflows[0].payload_template: "),
        (
            ("trigger_value: /ticket", "trigger_value: /help"),
            "tenants[0].workflows[0].trigger_value: /help is a built-in",
        ),
        (
            ("bot: helpdesk\n        trigger", "bot: nobody\n        trigger"),
            "tenants[0].workflows[0].bot: no bot 'nobody'",
        ),
        (("url: https://tickets.acme.example/api/printer", "url: ftp://x.example/"), "tenants[0].workflows[1].url: "),
        (("max_retries: 2", "max_retries: 99"), "tenants[0].workflows[0].max_retries: "),
    ],
)
def test_invalid_workflows_change_nothing_and_name_the_path(tmp_path, capsys, monkeypatch, change, says):
    with pytest.raises(CommandError) as exc:
        apply(tmp_path, CONFIG.replace(*change), capsys, monkeypatch)
    assert f"parley.yaml: {says}" in str(exc.value)
    assert not Workflow.objects.exists()


TOOL_CONFIG = """
tenants:
  - slug: acme
    name: ACME Corp
    models:
      - name: primary
        model: gpt-test
        supports_tools: false
    bots:
      - slug: helpdesk
        name: Helpdesk
    workflows:
      - name: Create ticket
        bot: helpdesk
        trigger: tool
        trigger_value: create_ticket
        description: Open a support ticket when the user reports a fault.
        parameters:
          type: object
          properties:
            summary: {type: string, description: What is wrong}
            priority: {type: string, enum: [low, normal, high]}
          required: [summary]
        url: https://tickets.acme.example/api/tickets
        confirmation_required: true
"""


def test_a_tool_workflow_applies_and_round_trips(tmp_path, capsys, monkeypatch):
    from apps.llm.models import ModelConfig

    out = apply(tmp_path, TOOL_CONFIG, capsys, monkeypatch)
    assert "created workflow acme/Create ticket" in out
    wf = Workflow.objects.get()
    assert wf.trigger == "tool" and wf.trigger_value == "create_ticket" and wf.confirmation_required
    assert wf.parameters["required"] == ["summary"] and wf.description.startswith("Open a support ticket")
    assert ModelConfig.objects.get().supports_tools is False
    call_command("export")
    text = capsys.readouterr().out
    (tenant,) = yaml.safe_load(text)["tenants"]
    (exported,) = tenant["workflows"]
    assert exported["trigger"] == "tool" and exported["parameters"] == wf.parameters
    assert tenant["models"][0]["supports_tools"] is False
    path = tmp_path / "exported.yaml"
    path.write_text(text)
    call_command("apply", "-f", str(path))
    assert "No changes." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            ("trigger_value: create_ticket", "trigger_value: create ticket!"),
            "trigger_value: 'create ticket!' is not a tool name",
        ),
        (
            ("trigger_value: create_ticket", "trigger_value: current_datetime"),
            "trigger_value: current_datetime is a built-in tool",
        ),
        (
            ("description: Open a support ticket when the user reports a fault.", "description: ''"),
            "description: Tell the model",
        ),
        (("type: object\n", "type: array\n"), "parameters: The arguments must be an object"),
        (
            ("enum: [low, normal, high]", "enum: high"),
            "parameters: Not a valid JSON Schema at properties/priority/enum",
        ),
    ],
)
def test_invalid_tools_change_nothing_and_name_the_path(tmp_path, capsys, monkeypatch, change, says):
    with pytest.raises(CommandError) as exc:
        apply(tmp_path, TOOL_CONFIG.replace(*change), capsys, monkeypatch)
    assert f"parley.yaml: tenants[0].workflows[0].{says}" in str(exc.value)
    assert not Workflow.objects.exists()
