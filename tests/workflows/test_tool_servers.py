"""Tool servers (MCP): a real streamable-HTTP MCP server on 127.0.0.1 (tests/fakes/mcp.py), the
bot's model calling the tools the bot may use, through the official SDK and the outbound guard."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.conversations.models import Message
from apps.workflows.mcp import forget_tool_servers
from apps.workflows.models import BotToolServer, ToolServer
from tests.conversations.conftest import post_message
from tests.fakes.llm import tool_results
from tests.fakes.mcp import FakeMCP

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "mcp-token-5b9e1f"


@pytest.fixture
def mcp_server():
    with FakeMCP(token=TOKEN) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_servers():
    forget_tool_servers()
    yield
    forget_tool_servers()


def attach(bot, server, *, tools=("lookup_order",), token=TOKEN, timeout_s=5) -> ToolServer:
    row = ToolServer(
        tenant=bot.tenant,
        name="orders",
        url=server.url,
        headers=json.dumps({"Authorization": f"Bearer {token}"}),
        timeout_s=timeout_s,
    )
    row.full_clean()
    row.save()
    link = BotToolServer(bot=bot, server=row, tools=list(tools))
    link.full_clean()
    link.save()
    return row


def says_result(body: dict) -> str:
    results = tool_results(body)
    if not results:
        return "I cannot look that up."
    told = json.loads(results[-1])
    return f"Order status: {told['result']['status']}" if told.get("ok") else f"Sorry: {told['error']}"


def test_the_model_calls_a_tool_of_the_bots_server(client, make_setup, platform_api, llm, mcp_server):
    bot, channel = make_setup()
    row = attach(bot, mcp_server)
    llm.set(text=says_result)
    llm.then(text="", tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "A-77"}}])
    post_message(client, channel, id="m-1", text="where is my order A-77?")
    assert platform_api.texts() == ["Order status: shipped"]
    assert mcp_server.calls == [("lookup_order", {"order_id": "A-77"})]
    offered = [t["function"]["name"] for t in llm.requests[0].json()["tools"]]
    assert offered == ["lookup_order", "current_datetime", "handoff_to_human"]  # refund is not the bot's
    assert set(mcp_server.seen_headers) == {f"Bearer {TOKEN}"}
    (entry,) = Message.objects.get(role="assistant").tool_calls
    assert entry["kind"] == "mcp" and entry["outcome"] == "ok"
    # The headers are encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers FROM workflows_toolserver WHERE id = %s", [row.pk])
        (stored,) = cursor.fetchone()
    assert TOKEN not in stored


def test_the_tool_list_is_fetched_once_and_cached(client, make_setup, platform_api, llm, mcp_server):
    bot, channel = make_setup()
    attach(bot, mcp_server, tools=())  # every tool of the server
    post_message(client, channel, id="m-1", text="hello")
    post_message(client, channel, id="m-2", text="hello again")
    assert mcp_server.list_requests == 1
    offered = [t["function"]["name"] for t in llm.requests[1].json()["tools"]]
    assert sorted(offered) == ["current_datetime", "handoff_to_human", "lookup_order", "refund", "slow"]


def test_a_hung_tool_times_out_into_an_answer(client, make_setup, platform_api, llm, mcp_server):
    bot, channel = make_setup()
    attach(bot, mcp_server, tools=("slow",), timeout_s=1)
    llm.set(text=says_result)
    llm.then(text="", tool_calls=[{"name": "slow", "arguments": {"seconds": 5}}])
    post_message(client, channel, id="m-1", text="take your time")
    (text,) = platform_api.texts()
    assert text.startswith("Sorry: slow on orders did not answer within 1 s")
    assert Message.objects.get(role="assistant").tool_calls[0]["outcome"] == "error"


def test_a_server_that_refuses_leaves_the_bot_answering_without_it(client, make_setup, platform_api, llm, mcp_server):
    bot, channel = make_setup()
    attach(bot, mcp_server, token="wrong")
    post_message(client, channel, id="m-1", text="hello")
    assert platform_api.texts() == ["Hello from the fake model."]
    assert "tools" not in llm.requests[0].json() and mcp_server.calls == []


def test_the_outbound_guard_applies(client, make_setup, platform_api, llm, settings):
    bot, channel = make_setup()
    with FakeMCP(token=TOKEN, host="127.0.0.2") as elsewhere:
        attach(bot, elsewhere)
        # The model and the platform stay reachable; the tool server's address is refused.
        settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = "127.0.0.0/8"
        settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS = "127.0.0.1/32"
        post_message(client, channel, id="m-1", text="where is my order A-77?")
        assert platform_api.texts() == ["Hello from the fake model."]
        assert elsewhere.seen_headers == []  # nothing reached the server


def test_bad_settings_are_refused(make_setup, mcp_server):
    bot, _ = make_setup()
    row = ToolServer(tenant=bot.tenant, name="x", url="ftp://tools.example/", headers="Bearer abc")
    with pytest.raises(ValidationError) as exc:
        row.full_clean()
    assert set(exc.value.message_dict) >= {"url", "headers"}
    row = attach(bot, mcp_server)
    link = BotToolServer(bot=bot, server=row, tools="lookup_order")
    with pytest.raises(ValidationError):
        link.full_clean()


SERVER_CONFIG = """
tenants:
  - slug: acme
    name: ACME Corp
    timezone: Asia/Shanghai
    tool_servers:
      - name: orders
        url: https://tools.acme.example/mcp
        headers:
          Authorization: Bearer ${ORDERS_TOKEN}
        timeout_s: 8
    bots:
      - slug: helpdesk
        name: Helpdesk
        tool_servers:
          - name: orders
            tools: [lookup_order]
"""


def test_tool_servers_in_config_as_code(tmp_path, capsys, monkeypatch):
    import yaml
    from django.core.management import CommandError, call_command

    monkeypatch.setenv("ORDERS_TOKEN", "tok-in-env-19")
    path = tmp_path / "parley.yaml"
    path.write_text(SERVER_CONFIG)
    call_command("apply", "-f", str(path))
    out = capsys.readouterr().out
    assert "created tool server acme/orders" in out
    assert server_tenant_timezone() == "Asia/Shanghai"
    server = ToolServer.objects.get()
    assert server.header_dict() == {"Authorization": "Bearer tok-in-env-19"} and server.timeout_s == 8
    (link,) = BotToolServer.objects.all()
    assert link.bot.slug == "helpdesk" and link.tools == ["lookup_order"]
    call_command("apply", "-f", str(path))
    assert "No changes." in capsys.readouterr().out
    call_command("export")
    text = capsys.readouterr().out
    assert "tok-in-env-19" not in text
    (tenant,) = yaml.safe_load(text)["tenants"]
    assert tenant["tool_servers"] == [
        {"name": "orders", "url": "https://tools.acme.example/mcp", "timeout_s": 8, "enabled": True}
    ]
    assert tenant["bots"][0]["tool_servers"] == [{"name": "orders", "tools": ["lookup_order"]}]
    exported = tmp_path / "exported.yaml"
    exported.write_text(text)
    call_command("apply", "-f", str(exported))  # without headers: the saved ones are kept
    assert "No changes." in capsys.readouterr().out
    assert ToolServer.objects.get().header_dict() == {"Authorization": "Bearer tok-in-env-19"}
    bad = SERVER_CONFIG.replace("- name: orders\n            tools", "- name: billing\n            tools")
    path.write_text(bad)
    with pytest.raises(CommandError) as exc:
        call_command("apply", "-f", str(path))
    assert "tenants[0].bots[0].tool_servers[0].name: no tool server 'billing'" in str(exc.value)
    path.write_text(SERVER_CONFIG.replace("Asia/Shanghai", "Mars/Olympus"))
    with pytest.raises(CommandError) as exc:
        call_command("apply", "-f", str(path))
    assert "tenants[0].timezone: Mars/Olympus is not a time zone" in str(exc.value)
    path.write_text(SERVER_CONFIG.replace("https://tools.acme.example/mcp", "ftp://tools.acme.example/"))
    with pytest.raises(CommandError) as exc:
        call_command("apply", "-f", str(path))
    assert "tool_servers[0].url: Only http:// and https:// addresses can be used, not ftp://." in str(exc.value)


def server_tenant_timezone() -> str:
    from apps.tenants.models import Tenant

    return Tenant.objects.get(slug="acme").timezone
