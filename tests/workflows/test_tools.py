"""Workflows as tools: the bot's model calls them through its native tool calling (the fakes speak
the OpenAI and Anthropic wire formats), each call a signed workflow run against the fake business
system on 127.0.0.1, the result back to the model and its answer to the user."""

from __future__ import annotations

import json

import pytest

from apps.channels.platforms import registry
from apps.conversations.models import InboundMessage, Message
from apps.conversations.pipeline.process import process_inbound
from apps.llm import router
from apps.workflows.models import WorkflowRun
from tests.conversations.conftest import post_message
from tests.conversations.fake_platform import FakeIMAdapter
from tests.factories import make_bot, make_channel, make_model, make_tenant
from tests.fakes.llm import FakeAnthropic, FakeOpenAI, tool_results

from .conftest import verify_signature

pytestmark = pytest.mark.django_db(transaction=True)
R = WorkflowRun.Status

TICKET_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "What is wrong, in a few words"},
        "priority": {"type": "string", "enum": ["low", "normal", "high"]},
    },
    "required": ["summary"],
    "additionalProperties": False,
}


def make_tool(make_workflow, bot, **fields):
    fields.setdefault("trigger", "tool")
    fields.setdefault("trigger_value", "create_ticket")
    fields.setdefault("description", "Open a support ticket when the user reports a fault. Returns the ticket id.")
    fields.setdefault("parameters", TICKET_SCHEMA)
    return make_workflow(bot, **fields)


def last_result(body: dict) -> dict:
    return json.loads(tool_results(body)[-1])


def tells_ticket(body: dict) -> str:
    """The fake model's answer once a tool result is in its request: the ticket number, or the error."""
    results = tool_results(body)
    if not results:
        return "Let me check."
    told = json.loads(results[-1])
    if told.get("ok"):
        return f"Your ticket is {told['result']['id']}."
    return f"Sorry, that did not work: {told['error']}"


def test_a_plain_request_creates_one_ticket_and_the_user_gets_its_number(
    client, make_setup, make_workflow, business, platform_api, llm
):
    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    llm.set(text=tells_ticket)
    llm.then(
        text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken", "priority": "high"}}]
    )
    post_message(client, channel, id="m-1", name="Alice", text="My printer is broken, please open a ticket")
    assert platform_api.texts() == ["Your ticket is T-1042."]
    (call,) = business.calls
    assert verify_signature(call)
    run = WorkflowRun.objects.get()
    assert run.status == R.SUCCEEDED and call.headers["X-Parley-Run-Id"] == str(run.pk)
    body = call.json()
    assert body["arguments"] == {"summary": "printer broken", "priority": "high"} and body["user_name"] == "Alice"
    first, second = (r.json() for r in llm.requests)
    assert [t["function"]["name"] for t in first["tools"]] == ["create_ticket", "current_datetime", "handoff_to_human"]
    assert first["tools"][0]["function"]["parameters"] == TICKET_SCHEMA
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "create_ticket"
    assert last_result(second)["result"] == {"id": "T-1042"}
    reply = Message.objects.get(role="assistant")
    assert reply.source == "model" and reply.text == "Your ticket is T-1042."
    assert [(c["tool"], c["outcome"], c["run"]) for c in reply.tool_calls] == [("create_ticket", "ok", run.pk)]
    # Usage counts both rounds.
    assert reply.tokens_out >= 2
    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED


def test_the_review_transcript_shows_each_call(
    client, make_setup, make_workflow, business, platform_api, llm, superuser
):
    from django.urls import reverse

    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "call me at 13812345678"}}])
    post_message(client, channel, id="m-1", text="please open a ticket, call me at 13812345678")
    reply = Message.objects.get(role="assistant")
    client.force_login(superuser)
    page = client.get(reverse("admin:conversations_conversation_change", args=[reply.conversation_id])).content.decode()
    assert "1 tool call" in page and "Create ticket" in page and "T-1042" in page
    assert "13812345678" not in json.dumps(reply.tool_calls)  # arguments and results are kept masked


def test_in_chinese_with_an_anthropic_model(client, make_workflow, business, platform_api):
    with FakeAnthropic() as fake:
        tenant = make_tenant("acme")
        model = make_model(tenant, provider="anthropic", endpoint=fake.url, model="claude-test", timeout_s=10)
        bot = make_bot(tenant, model=model)
        channel = make_channel(bot, platform="fakeim", key="acme-fake", api_base=platform_api.url)
        make_tool(make_workflow, bot)
        fake.set(text=lambda body: f"已为您创建工单 {last_result(body)['result']['id']}。")
        fake.then(
            text="好的，我来创建工单。", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "打印机坏了"}}]
        )
        post_message(client, channel, id="m-zh", text="我的打印机坏了，请帮我开一个工单")
        assert platform_api.texts() == ["已为您创建工单 T-1042。"]
        assert business.calls[0].json()["arguments"] == {"summary": "打印机坏了"}
        second = fake.requests[1].json()
        assert second["tools"][0]["input_schema"] == TICKET_SCHEMA
        blocks = second["messages"][-2]["content"]
        assert blocks[-1]["type"] == "tool_use" and blocks[-1]["input"] == {"summary": "打印机坏了"}
        assert second["messages"][-1]["content"][0]["type"] == "tool_result"
    assert len(business.calls) == 1


@pytest.mark.parametrize("fake_class", [FakeOpenAI, FakeAnthropic])
@pytest.mark.parametrize("streamed", [False, True])
def test_the_router_reads_tool_calls_in_both_wire_formats(fake_class, streamed):
    """Whole and streamed answers (OpenAI deltas by index, Anthropic input_json_delta) give the same calls."""
    with fake_class() as fake:
        tenant = make_tenant("acme")
        provider = "anthropic" if fake_class is FakeAnthropic else "openai"
        cfg = make_model(tenant, provider=provider, endpoint=fake.url, timeout_s=10)
        fake.set(
            text="",
            tool_calls=[
                {
                    "id": "call_a",
                    "name": "create_ticket",
                    "arguments": {"summary": '打印机 "坏了"', "priority": "high"},
                },
                {"id": "call_b", "name": "current_datetime", "arguments": {}},
            ],
        )
        pieces: list[str] = []
        answer = router.generate(
            [router.ModelSpec.from_config(cfg)],
            [{"role": "user", "content": "open a ticket"}],
            fail_text="failed",
            on_token=pieces.append if streamed else None,
            tools=[{"name": "create_ticket", "description": "d", "parameters": TICKET_SCHEMA}],
        )
    assert not answer.failed
    assert [(c.id, c.name, json.loads(c.arguments)) for c in answer.tool_calls] == [
        ("call_a", "create_ticket", {"summary": '打印机 "坏了"', "priority": "high"}),
        ("call_b", "current_datetime", {}),
    ]
    assert "".join(pieces) == ""


def test_a_sensitive_tool_waits_for_yes(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_tool(make_workflow, bot, confirmation_required=True)
    llm.set(text=tells_ticket)
    llm.then(
        text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken", "priority": "high"}}]
    )
    post_message(client, channel, id="m-1", text="My printer is broken, please open a ticket")
    (prompt,) = platform_api.texts()
    assert "Create ticket" in prompt and "summary: printer broken, priority: high" in prompt and "yes" in prompt
    assert business.calls == [] and WorkflowRun.objects.get().status == R.PENDING_CONFIRMATION
    post_message(client, channel, id="m-2", text="yes")
    assert platform_api.texts()[-1] == "Your ticket is T-1042."
    assert len(business.calls) == 1
    run = WorkflowRun.objects.get()
    assert run.status == R.SUCCEEDED and run.confirmed_by.platform_message_id == "m-2"
    reply = Message.objects.filter(role="assistant", source="model").get()
    (entry,) = reply.tool_calls
    assert entry["outcome"] == "ok" and entry["confirmed_by"] == run.confirmed_by_id
    # The model saw the user's request, not the "yes".
    last = llm.requests[-1].json()["messages"]
    assert not any(m.get("content") == "yes" for m in last)
    # A second "yes" makes no second call.
    post_message(client, channel, id="m-3", text="yes")
    assert len(business.calls) == 1


def test_no_calls_nothing_and_the_model_is_told(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_tool(make_workflow, bot, confirmation_required=True)
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "打印机坏了"}}])
    post_message(client, channel, id="m-1", text="打印机坏了，帮我开个工单")
    assert "确认" in platform_api.texts()[0]
    post_message(client, channel, id="m-2", text="取消")
    assert business.calls == []
    assert "declined" in last_result(llm.requests[-1].json())["error"]
    assert platform_api.texts()[-1].startswith("Sorry, that did not work: The user declined")
    assert WorkflowRun.objects.get().status == R.CANCELLED


def test_a_message_handled_again_creates_no_second_ticket(
    client, make_setup, make_workflow, business, platform_api, llm
):
    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    asks = [{"name": "create_ticket", "arguments": {"summary": "printer broken"}}]
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=asks)
    post_message(client, channel, id="m-1", text="My printer is broken, please open a ticket")
    assert len(business.calls) == 1
    # The worker died after the call, before its answer was stored: the message is handled again
    # (the sweeper re-drives it) and the model asks for the same call.
    inbound = InboundMessage.objects.get()
    Message.objects.filter(role="assistant").delete()
    InboundMessage.objects.filter(pk=inbound.pk).update(status=InboundMessage.Status.RECEIVED, attempts=1, reply=None)
    llm.then(text="", tool_calls=asks)
    process_inbound(inbound.pk)
    assert len(business.calls) == 1 and WorkflowRun.objects.count() == 1
    assert platform_api.texts() == ["Your ticket is T-1042."] * 2


def test_a_hung_tool_times_out_into_a_polite_answer(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_tool(make_workflow, bot, timeout_s=1, max_retries=0)
    business.script("slow")
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken"}}])
    post_message(client, channel, id="m-1", text="please open a ticket")
    (text,) = platform_api.texts()
    assert text.startswith("Sorry, that did not work: Create ticket failed")
    assert WorkflowRun.objects.get().status == R.FAILED


def test_the_deadline_holds_for_a_call_that_hangs(
    client, make_setup, make_workflow, business, platform_api, llm, settings
):
    settings.PARLEY_TOOL_DEADLINE_SECONDS = 1
    bot, channel = make_setup()
    make_tool(make_workflow, bot, timeout_s=5, max_retries=0)
    business.script("slow")
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken"}}])
    post_message(client, channel, id="m-1", text="please open a ticket")
    (text,) = platform_api.texts()
    assert "deadline" in text
    assert WorkflowRun.objects.get().status == R.FAILED


def test_the_loop_limit_holds(client, make_setup, make_workflow, business, platform_api, llm, settings):
    settings.PARLEY_TOOL_MAX_ROUNDS = 2
    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    # A model that would call tools for ever; asked without tools, it answers.
    llm.set(text="Here is what I found.", tool_calls=[{"name": "current_datetime", "arguments": {}}])
    post_message(client, channel, id="m-1", text="what time is it?")
    assert platform_api.texts() == ["Here is what I found."]
    assert llm.calls == 3
    assert [bool(r.json().get("tools")) for r in llm.requests] == [True, True, False]
    # The last request carries what the tools gave, as text.
    assert "[Result of the tool current_datetime]" in json.dumps(llm.requests[-1].json(), ensure_ascii=False)
    reply = Message.objects.get(role="assistant")
    assert [c["outcome"] for c in reply.tool_calls] == ["ok", "ok"]


def test_parallel_calls_run_together(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_tool(make_workflow, bot, timeout_s=5, max_retries=0)
    business.script("slow", "slow")
    llm.set(text=lambda body: f"{len(tool_results(body))} tickets.")
    llm.then(
        text="",
        tool_calls=[
            {"name": "create_ticket", "arguments": {"summary": "printer"}},
            {"name": "create_ticket", "arguments": {"summary": "scanner"}},
        ],
    )
    post_message(client, channel, id="m-1", text="printer and scanner are broken, a ticket each please")
    assert platform_api.texts() == ["2 tickets."]
    assert len(business.calls) == 2
    entries = Message.objects.get(role="assistant").tool_calls
    # Each call sleeps 1.5 s at the business system; together they took well under the sum.
    assert all(e["outcome"] == "ok" for e in entries)
    assert max(e["latency_ms"] for e in entries) < 2900


def tool_metric(kind: str, outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("parley_tool_calls_total", {"kind": kind, "outcome": outcome}) or 0.0


def test_malformed_calls_are_answered_to_the_model(client, make_setup, make_workflow, business, platform_api, llm):
    before = tool_metric("unknown", "unknown"), tool_metric("workflow", "invalid")
    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    llm.set(text=lambda body: " | ".join(json.loads(r)["error"] for r in tool_results(body)))
    llm.then(
        text="",
        tool_calls=[
            {"name": "delete_everything", "arguments": {}},
            {"name": "create_ticket", "arguments": {"priority": "urgent"}},
            {"name": "create_ticket", "arguments": "{not json"},
        ],
    )
    post_message(client, channel, id="m-1", text="please open a ticket")
    (text,) = platform_api.texts()
    unknown, invalid, not_json = text.split(" | ")
    assert unknown.startswith("There is no tool 'delete_everything'") and "create_ticket" in unknown
    assert invalid.startswith("Invalid arguments for create_ticket") and "summary" in invalid
    assert "not valid JSON" in not_json
    assert business.calls == [] and not WorkflowRun.objects.exists()
    assert [c["outcome"] for c in Message.objects.get(role="assistant").tool_calls] == ["unknown", "invalid", "invalid"]
    assert (tool_metric("unknown", "unknown"), tool_metric("workflow", "invalid")) == (before[0] + 1, before[1] + 2)


def test_commands_and_keywords_keep_working_beside_tools(
    client, make_setup, make_workflow, business, platform_api, llm
):
    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    make_workflow(bot, name="Ticket command", trigger="command", trigger_value="ticket")
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert platform_api.texts() == ["Ticket T-1042 created."] and llm.calls == 0


def test_a_bot_without_tools_offers_none(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot)  # a command workflow only
    post_message(client, channel, id="m-1", text="hello")
    assert "tools" not in llm.requests[0].json()


def test_the_model_hands_the_conversation_to_a_person(client, make_setup, make_workflow, business, platform_api, llm):
    from apps.inbox.models import Handoff

    bot, channel = make_setup()
    make_tool(make_workflow, bot)
    llm.set(text="A colleague will follow up with you shortly.")
    llm.then(text="", tool_calls=[{"name": "handoff_to_human", "arguments": {"note": "wants a refund, very upset"}}])
    post_message(client, channel, id="m-1", text="This is the third time!! I want to talk to someone")
    handoff = Handoff.objects.get()
    assert handoff.reason == Handoff.Reason.MODEL and handoff.note == "wants a refund, very upset"
    texts = platform_api.texts()
    assert (
        texts[-1] == "A colleague will follow up with you shortly."
        or "A colleague will follow up with you shortly." in texts
    )
    assert len(texts) == 2  # the queue notice (with the hours) and the model's answer
    assert business.calls == []
    # The bot is silent while the conversation waits for a person.
    post_message(client, channel, id="m-2", text="hello?")
    assert len(platform_api.texts()) == 2
    assert InboundMessage.objects.get(platform_message_id="m-2").status == InboundMessage.Status.HELD


STATUS_PLATFORM = "fakestatus"
shown: dict[str, list[str]] = {"tokens": [], "status": []}


class StatusAdapter(FakeIMAdapter):
    """The test platform, streaming answers and showing statuses (as the web chat does)."""

    platform = STATUS_PLATFORM

    def token_sink(self, channel, target, *, reply_ref):
        return shown["tokens"].append

    def status_sink(self, channel, target):
        return shown["status"].append


@pytest.fixture
def status_platform():
    registry.PLATFORMS[STATUS_PLATFORM] = registry.Platform(
        STATUS_PLATFORM, STATUS_PLATFORM, f"{__name__}.StatusAdapter"
    )
    registry.get_adapter.cache_clear()
    shown["tokens"].clear()
    shown["status"].clear()
    yield
    registry.PLATFORMS.pop(STATUS_PLATFORM, None)
    registry.get_adapter.cache_clear()


@pytest.mark.parametrize("fake_class", [FakeOpenAI, FakeAnthropic])
def test_streamed_answers_show_the_call_and_then_the_answer(
    fake_class, make_workflow, business, platform_api, status_platform
):
    with fake_class() as fake:
        tenant = make_tenant("acme")
        provider = "anthropic" if fake_class is FakeAnthropic else "openai"
        model = make_model(tenant, provider=provider, endpoint=fake.url, model="m", timeout_s=10)
        bot = make_bot(tenant, model=model)
        channel = make_channel(bot, platform=STATUS_PLATFORM, key="acme-status", api_base=platform_api.url)
        make_tool(make_workflow, bot)
        fake.set(text=tells_ticket)
        fake.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken"}}])
        row = InboundMessage.objects.create(
            channel=channel, platform_message_id="s-1", chat_id="c", user_id="u", text="open a ticket please"
        )
        process_inbound(row.pk)
        assert all(r.json().get("stream") for r in fake.requests)
    assert shown["status"] == ["Calling Create ticket…"]
    assert "".join(shown["tokens"]) == "Your ticket is T-1042."
    assert platform_api.texts() == ["Your ticket is T-1042."]
    assert len(business.calls) == 1


def test_the_model_searches_the_knowledge_base(client, make_setup, make_workflow, business, platform_api, llm):
    from apps.knowledge import services as knowledge
    from apps.knowledge.models import KnowledgeBase

    bot, channel = make_setup(knowledge_fallback="general")
    make_tool(make_workflow, bot)
    kb = KnowledgeBase.objects.create(tenant=bot.tenant, name="Handbook")
    kb.bots.add(bot)
    knowledge.add_text(kb, title="Returns", text="# Returns\nItems can be returned within 30 days with the receipt.")
    llm.set(text=lambda body: json.loads(tool_results(body)[-1])["passages"][0]["text"] if tool_results(body) else "?")
    llm.then(text="", tool_calls=[{"name": "search_knowledge", "arguments": {"query": "returned within days receipt"}}])
    post_message(client, channel, id="m-1", text="can I bring this back?")
    assert "within 30 days" in platform_api.texts()[-1]
    offered = [t["function"]["name"] for t in llm.requests[0].json()["tools"]]
    assert "search_knowledge" in offered


def test_a_model_failing_mid_loop_falls_back(client, make_setup, make_workflow, business, platform_api, llm):
    from apps.bots.models import BotFallback

    bot, channel = make_setup()
    spare = make_model(bot.tenant, "spare", endpoint=llm.url, model="spare-model", timeout_s=10)
    BotFallback.objects.create(bot=bot, model=spare, position=1)
    make_tool(make_workflow, bot)
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken"}}])
    llm.then(status=500)  # the primary fails in the second round: the spare answers with the result
    post_message(client, channel, id="m-1", text="please open a ticket")
    assert platform_api.texts() == ["Your ticket is T-1042."]
    assert [r.json()["model"] for r in llm.requests] == ["test-model", "test-model", "spare-model"]
    reply = Message.objects.get(role="assistant")
    assert reply.fallback_used and [a["outcome"] for a in reply.attempts] == ["ok", "error", "ok"]
    assert len(business.calls) == 1


def test_the_date_and_time_are_the_tenants(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    type(bot.tenant).objects.filter(pk=bot.tenant_id).update(timezone="Asia/Shanghai")
    make_tool(make_workflow, bot)
    llm.set(text=lambda body: json.loads(tool_results(body)[-1])["datetime"] if tool_results(body) else "?")
    llm.then(text="", tool_calls=[{"name": "current_datetime", "arguments": {}}])
    post_message(client, channel, id="m-1", text="what day is it?")
    assert platform_api.texts()[-1].endswith("+08:00")


def test_an_expired_confirmation_calls_nothing(client, make_setup, make_workflow, business, platform_api, llm):
    from datetime import timedelta

    from django.utils import timezone

    bot, channel = make_setup()
    make_tool(make_workflow, bot, confirmation_required=True)
    llm.set(text=tells_ticket)
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken"}}])
    post_message(client, channel, id="m-1", text="please open a ticket")
    WorkflowRun.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    post_message(client, channel, id="m-2", text="yes")
    assert "expired" in platform_api.texts()[-1]
    assert business.calls == [] and WorkflowRun.objects.get().status == R.CANCELLED


def test_writing_something_else_drops_the_pending_action(
    client, make_setup, make_workflow, business, platform_api, llm
):
    bot, channel = make_setup()
    make_tool(make_workflow, bot, confirmation_required=True)
    llm.set(text="Our opening hours are 9 to 5.")
    llm.then(text="", tool_calls=[{"name": "create_ticket", "arguments": {"summary": "printer broken"}}])
    post_message(client, channel, id="m-1", text="please open a ticket")
    post_message(client, channel, id="m-2", text="actually, when are you open?")
    texts = platform_api.texts()
    assert "was cancelled" in texts[-2] and texts[-1] == "Our opening hours are 9 to 5."
    assert business.calls == [] and WorkflowRun.objects.get().status == R.CANCELLED
