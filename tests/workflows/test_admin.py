"""The workflow admin: clear field errors on save, the signing secret kept masked, the test call,
and run pages that mask what users wrote."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.core.models import AuditLog
from apps.workflows.models import Workflow, WorkflowRun
from tests.factories import PASSWORD, make_bot, make_tenant, make_user

from .conftest import SECRET

pytestmark = pytest.mark.django_db
ADD = "admin:workflows_workflow_add"


@pytest.fixture
def admin_client(client, tenant):
    make_user("root", superuser=True)  # first-run setup is over: the admin is open
    user = make_user("alice", tenant=tenant)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def form(tenant, bot=None, **overrides) -> dict:
    data = {
        "tenant": tenant.pk,
        "bot": bot.pk if bot else "",
        "name": "Create ticket",
        "trigger": "command",
        "trigger_value": "/ticket",
        "url": "https://tickets.example.com/api/tickets",
        "payload_template": '{"title": "{{text}}", "reporter": {{user_name}}, "run": {{run_id}}}',
        "reply_template": "Ticket {{id}} created.",
        "signing_secret": SECRET,
        "confirmation_required": "on",
        "max_retries": 3,
        "timeout_s": 10,
        "enabled": "on",
    }
    data.update(overrides)
    return data


def errors_of(resp) -> dict:
    assert resp.status_code == 200, "expected the form again, with errors"
    return {k: " ".join(v) for k, v in resp.context["adminform"].form.errors.items()}


def test_a_valid_workflow_saves(admin_client, tenant, bot):
    resp = admin_client.post(reverse(ADD), form(tenant, bot))
    assert resp.status_code == 302, errors_of(resp)
    wf = Workflow.objects.get()
    assert wf.signing_secret == SECRET and wf.bot == bot


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"payload_template": '{"title": "{{text}}",}'}, "payload_template", "not valid JSON"),
        ({"payload_template": '{"title": {{text}} {{user_name}}}'}, "payload_template", "line 1, column"),
        ({"payload_template": '{"title": "{{txet}}"}'}, "payload_template", "Unknown placeholder(s): {{txet}}"),
        ({"url": "ftp://tickets.example.com/x"}, "url", ""),
        ({"url": "javascript:alert(1)"}, "url", ""),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url", "169.254.169.254 is in a network Parley may not"),
        ({"trigger_value": "  "}, "trigger_value", "required"),
        ({"trigger_value": "open ticket"}, "trigger_value", "one word"),
        ({"trigger_value": "/help"}, "trigger_value", "/help is a built-in command"),
        ({"trigger_value": "重置"}, "trigger_value", "built-in command"),
        ({"max_retries": 50}, "max_retries", "At most 10"),
        ({"timeout_s": 0}, "timeout_s", "Between 1 and 60"),
    ],
)
def test_invalid_workflows_get_a_clear_field_error(admin_client, tenant, bot, overrides, field, says):
    resp = admin_client.post(reverse(ADD), form(tenant, bot, **overrides))
    errors = errors_of(resp)
    assert field in errors and says in errors[field]
    assert not Workflow.objects.exists()


def test_keyword_may_be_several_words_and_duplicates_are_refused(admin_client, tenant, bot):
    assert (
        admin_client.post(
            reverse(ADD), form(tenant, bot, trigger="keyword", trigger_value="printer broken")
        ).status_code
        == 302
    )
    errors = errors_of(
        admin_client.post(reverse(ADD), form(tenant, bot, trigger="keyword", trigger_value="Printer  Broken"))
    )
    assert "already uses this keyword" in errors["trigger_value"]


def test_bot_of_another_tenant_is_refused(client, tenant, bot):
    make_user("root", superuser=True)
    assert client.login(username="root", password=PASSWORD)
    other = make_bot(make_tenant("globex"), slug="other")
    errors = errors_of(client.post(reverse(ADD), form(tenant, other)))
    assert "another tenant" in errors["bot"]


def test_signing_secret_stays_masked(admin_client, tenant, bot):
    admin_client.post(reverse(ADD), form(tenant, bot))
    wf = Workflow.objects.get()
    change = reverse("admin:workflows_workflow_change", args=[wf.pk])
    page = admin_client.get(change).content.decode()
    assert SECRET not in page and "Leave empty to keep it" in page
    assert SECRET not in admin_client.get(reverse("admin:workflows_workflow_changelist")).content.decode()
    # Saving without typing the secret again keeps it.
    resp = admin_client.post(change, form(tenant, bot, signing_secret="", name="Open ticket"))
    assert resp.status_code == 302
    wf.refresh_from_db()
    assert wf.name == "Open ticket" and wf.signing_secret == SECRET


def test_send_a_test_call(admin_client, tenant, bot, business):
    wf = Workflow.objects.create(
        tenant=tenant,
        bot=bot,
        name="Create ticket",
        trigger_value="ticket",
        url=business.url,
        reply_template="Ticket {{id}} created.",
        signing_secret=SECRET,
    )
    resp = admin_client.post(
        reverse("admin:workflows_workflow_changelist"),
        {"action": "send_test_call", "_selected_action": [wf.pk]},
        follow=True,
    )
    (said,) = [str(m) for m in resp.context["messages"]]
    assert said.startswith("Create ticket: HTTP 200 in ") and said.endswith(
        "the user would read: Ticket T-1042 created."
    )
    assert business.calls[0].headers["X-Parley-Run-Id"] == "test"
    assert AuditLog.objects.filter(action="workflow.test_call").count() == 1
    assert not WorkflowRun.objects.exists()


def test_a_test_call_of_many_workflows_says_which_were_not_called(admin_client, tenant, bot, business):
    flows = [
        Workflow.objects.create(
            tenant=tenant, bot=bot, name=f"Flow {i}", trigger_value=f"flow{i}", url=business.url, signing_secret=SECRET
        )
        for i in range(7)
    ]
    resp = admin_client.post(
        reverse("admin:workflows_workflow_changelist"),
        {"action": "send_test_call", "_selected_action": [wf.pk for wf in flows]},
        follow=True,
    )
    said = [(m.level_tag, str(m)) for m in resp.context["messages"]]
    assert len(business.calls) == 5
    assert said[0] == (
        "warning",
        "Only the first 5 of the 7 selected workflows were called (a test call waits for each answer). "
        "Not called: Flow 5, Flow 6 — select them and send their test calls again.",
    )
    assert [text.split(":")[0] for level, text in said[1:]] == [f"Flow {i}" for i in range(5)]
    assert AuditLog.objects.filter(action="workflow.test_call").count() == 5


def test_run_page_masks_what_the_user_wrote(admin_client, tenant, bot):
    wf = Workflow.objects.create(
        tenant=tenant, bot=bot, name="Create ticket", trigger_value="ticket", url="https://x.example"
    )
    run = WorkflowRun.objects.create(workflow=wf, request_body={"text": "call me at 13812345678"}, status="succeeded")
    page = admin_client.get(reverse("admin:workflows_workflowrun_change", args=[run.pk])).content.decode()
    assert "13812345678" not in page and "138******78" in page


def test_other_tenants_workflows_and_runs_stay_out_of_reach(admin_client, tenant, business):
    theirs = Workflow.objects.create(
        tenant=make_tenant("globex"), name="Globex ticket", trigger_value="ticket", url=business.url
    )
    run = WorkflowRun.objects.create(workflow=theirs, status="succeeded")
    assert "Globex ticket" not in admin_client.get(reverse("admin:workflows_workflow_changelist")).content.decode()
    assert admin_client.get(reverse("admin:workflows_workflow_change", args=[theirs.pk])).status_code == 302
    assert admin_client.get(reverse("admin:workflows_workflowrun_change", args=[run.pk])).status_code == 302
    admin_client.post(
        reverse("admin:workflows_workflow_changelist"), {"action": "send_test_call", "_selected_action": [theirs.pk]}
    )
    assert business.calls == []


def test_reviewers_read_runs_but_not_workflows(client, tenant, bot):
    make_user("root", superuser=True)
    reviewer = make_user("rita", tenant=tenant, role="reviewer")
    assert client.login(username=reviewer.username, password=PASSWORD)
    wf = Workflow.objects.create(
        tenant=tenant, bot=bot, name="Create ticket", trigger_value="ticket", url="https://x.example"
    )
    run = WorkflowRun.objects.create(workflow=wf, status="failed", error="HTTP 502")
    assert client.get(reverse("admin:workflows_workflowrun_change", args=[run.pk])).status_code == 200
    assert client.get(reverse("admin:workflows_workflow_change", args=[wf.pk])).status_code in (302, 403)


def test_run_list_says_when_a_confirmation_expired(admin_client, tenant, bot):
    from datetime import timedelta

    from django.utils import timezone

    wf = Workflow.objects.create(
        tenant=tenant, bot=bot, name="Create ticket", trigger_value="ticket", url="https://x.example"
    )
    WorkflowRun.objects.create(
        workflow=wf, status="pending_confirmation", expires_at=timezone.now() - timedelta(seconds=5)
    )
    page = admin_client.get(reverse("admin:workflows_workflowrun_changelist")).content.decode()
    assert "Confirmation expired (never run)" in page


def test_a_tool_workflow_saves_with_its_schema_and_an_empty_one_means_no_arguments(admin_client, tenant, bot):
    schema = '{"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}'
    data = form(
        tenant, bot, trigger="tool", trigger_value="create_ticket", description="Open a ticket.", parameters=schema
    )
    resp = admin_client.post(reverse(ADD), data)
    assert resp.status_code == 302, errors_of(resp)
    assert Workflow.objects.get().parameters["required"] == ["summary"]
    data.update(name="Other", trigger_value="other_tool", parameters="")
    resp = admin_client.post(reverse(ADD), data)
    assert resp.status_code == 302, errors_of(resp)
    assert Workflow.objects.get(name="Other").parameters == {}


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"parameters": "{not json"}, "parameters", "Enter a valid JSON"),
        ({"parameters": '{"type": "array"}'}, "parameters", 'needs "type": "object"'),
        ({"description": ""}, "description", "Tell the model"),
        ({"trigger_value": "create ticket"}, "trigger_value", "is not a tool name"),
    ],
)
def test_a_bad_tool_is_refused_with_a_clear_error(admin_client, tenant, bot, overrides, field, says):
    data = form(tenant, bot, trigger="tool", trigger_value="create_ticket", description="Open a ticket.")
    data.update(overrides)
    resp = admin_client.post(reverse(ADD), data)
    assert says in errors_of(resp)[field]
    assert not Workflow.objects.exists()


def test_a_tool_server_saves_its_headers_encrypted_and_never_shows_them(admin_client, tenant, bot):
    from apps.workflows.models import BotToolServer, ToolServer

    token = "Bearer tool-server-token-8c1d"
    data = {
        "tenant": tenant.pk,
        "name": "orders",
        "url": "https://tools.example.com/mcp",
        "headers": json.dumps({"Authorization": token}),
        "timeout_s": 10,
        "enabled": "on",
        "bots-TOTAL_FORMS": 1,
        "bots-INITIAL_FORMS": 0,
        "bots-0-bot": bot.pk,
        "bots-0-tools": "",
    }
    resp = admin_client.post(reverse("admin:workflows_toolserver_add"), data)
    assert resp.status_code == 302, resp.context["adminform"].form.errors if resp.context else resp
    server = ToolServer.objects.get()
    assert server.header_dict() == {"Authorization": token}
    assert BotToolServer.objects.get().tools == []
    page = admin_client.get(reverse("admin:workflows_toolserver_change", args=[server.pk])).content.decode()
    assert "tool-server-token-8c1d" not in page
    listing = admin_client.get(reverse("admin:workflows_toolserver_changelist")).content.decode()
    assert "orders" in listing and "tool-server-token-8c1d" not in listing
    bad = dict(data, name="other", headers="Authorization: Bearer x")
    resp = admin_client.post(reverse("admin:workflows_toolserver_add"), bad)
    assert "JSON object" in " ".join(resp.context["adminform"].form.errors["headers"])
