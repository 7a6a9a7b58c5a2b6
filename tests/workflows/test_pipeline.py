"""Workflows through the real pipeline: a message in at the webhook, a signed call to a fake
business system on 127.0.0.1, the result out through the fake platform's send API (tasks run
eagerly in the test process; the same code runs on the ``webhooks`` queue of a worker)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.models import InboundMessage, Message
from apps.core.models import AuditLog
from apps.workflows.models import WorkflowRun
from tests.conversations.conftest import post_message

from .conftest import verify_signature

pytestmark = pytest.mark.django_db(transaction=True)
R = WorkflowRun.Status


def test_command_creates_a_ticket_and_tells_the_user_once(
    client, make_setup, make_workflow, business, platform_api, llm
):
    bot, channel = make_setup()
    make_workflow(bot)
    post_message(client, channel, id="m-1", name="Alice", text="/ticket printer is broken")
    assert platform_api.texts() == ["Ticket T-1042 created."]
    (call,) = business.calls
    assert verify_signature(call)
    assert call.headers["Content-Type"] == "application/json"
    run = WorkflowRun.objects.get()
    assert call.headers["X-Parley-Run-Id"] == str(run.pk)
    body = call.json()
    assert body["text"] == "printer is broken" and body["user_name"] == "Alice" and body["run_id"] == run.pk
    assert body["tenant"] == "acme" and body["bot"] == "helpdesk" and body["platform"] == "fakeim"
    assert run.status == R.SUCCEEDED and run.attempts == 1 and run.response_status == 200
    assert llm.calls == 0
    turns = list(Message.objects.order_by("created_at", "id").values_list("role", "text"))
    assert turns == [("user", "/ticket printer is broken"), ("assistant", "Ticket T-1042 created.")]
    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED


def metric(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("parley_workflow_calls_total", {"outcome": outcome}) or 0.0


def test_keyword_anywhere_in_the_message_starts_it(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, trigger="keyword", trigger_value="Printer Broken", reply_template="Ticket {{id}} opened.")
    post_message(client, channel, id="m-1", text="Hi, my PRINTER  broken again :(")
    assert platform_api.texts() == ["Ticket T-1042 opened."]
    assert business.calls[0].json()["text"] == "Hi, my PRINTER  broken again :("
    post_message(client, channel, id="m-2", text="what are your opening hours?")
    assert len(business.calls) == 1 and llm.calls == 1


def test_tenant_wide_workflow_and_the_bots_own_wins(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, tenant_wide=True, name="Tenant ticket", reply_template="tenant {{id}}")
    post_message(client, channel, id="m-1", text="/ticket one")
    assert platform_api.texts() == ["tenant T-1042"]
    make_workflow(bot, name="Bot ticket", reply_template="bot {{id}}")
    post_message(client, channel, id="m-2", text="/ticket two")
    assert platform_api.texts()[-1] == "bot T-1042"


def test_disabled_workflow_does_nothing(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, enabled=False)
    make_workflow(bot, name="Printer", trigger="keyword", trigger_value="printer", enabled=False)
    post_message(client, channel, id="m-1", text="/ticket printer is broken")
    assert platform_api.texts() == ["I don't know the command `/ticket`. Send `/help` to see what I can do."]
    post_message(client, channel, id="m-2", text="the printer is broken")
    assert llm.calls == 1 and business.calls == [] and not WorkflowRun.objects.exists()


def test_builtin_commands_stay_builtin(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, trigger="keyword", trigger_value="help me")
    post_message(client, channel, id="c-1", text="/help me")
    assert "/reset" in platform_api.texts()[0] and business.calls == []


def test_help_lists_the_bots_workflow_commands(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, tenant_wide=True, name="Tenant ticket")
    make_workflow(bot, name="Open a ticket")
    make_workflow(bot, name="Printer", trigger="keyword", trigger_value="printer")
    make_workflow(bot, name="Refund", trigger_value="refund", enabled=False)
    post_message(client, channel, id="h-1", text="/help")
    menu = platform_api.texts()[-1]
    assert menu.endswith("- `/ticket` — Open a ticket")  # the bot's own wins; keywords and disabled ones not listed
    assert "/refund" not in menu and "Tenant ticket" not in menu and "Printer" not in menu
    assert business.calls == []
    # An admin's own help text is sent as written.
    type(bot).objects.filter(pk=bot.pk).update(help_text="Ask me about orders.")
    post_message(client, channel, id="h-2", text="/help")
    assert platform_api.texts()[-1] == "Ask me about orders."


def test_user_text_with_quotes_and_newlines_stays_one_json_string(
    client, make_setup, make_workflow, business, platform_api
):
    bot, channel = make_setup()
    make_workflow(
        bot,
        payload_template='{"summary": "Issue: {{text}}", "reporter": {{user_name}}, "run": {{run_id}}, "fixed": 1}',
    )
    nasty = 'it says "paper jam"\\n", "admin": true, "x": "\nline two \\ end }}{{'
    post_message(client, channel, id="m-1", name='Bob "the" Builder', text=f"/ticket {nasty}")
    body = json.loads(business.calls[0].body)
    assert body == {
        "summary": f"Issue: {nasty}",
        "reporter": 'Bob "the" Builder',
        "run": WorkflowRun.objects.get().pk,
        "fixed": 1,
    }
    assert platform_api.texts() == ["Ticket T-1042 created."]


def test_empty_templates_send_every_field_and_say_done(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, payload_template="", reply_template="")
    post_message(client, channel, id="m-1", user="u-7", name="Alice", text="/ticket toner")
    body = business.calls[0].json()
    run = WorkflowRun.objects.get()
    assert body == {
        "text": "toner",
        "user_id": "u-7",
        "user_name": "Alice",
        "conversation_id": run.conversation_id,
        "tenant": "acme",
        "bot": "helpdesk",
        "platform": "fakeim",
        "language": "en",
        "run_id": run.pk,
        "workflow": "Create ticket",
    }
    assert platform_api.texts() == ["Done: **Create ticket**."]


def test_reply_template_reads_nested_fields_and_marks_missing_ones(
    client, make_setup, make_workflow, business, platform_api
):
    bot, channel = make_setup()
    business.answer = {"data": {"ticket": {"number": 77, "queue": ["L1", "L2"]}}}
    make_workflow(bot, reply_template="#{{data.ticket.number}} in {{data.ticket.queue.0}}, owner {{data.owner}}.")
    post_message(client, channel, id="m-1", text="/ticket x")
    assert platform_api.texts() == ["#77 in L1, owner (not provided)."]
    business.answer = "<html>not json</html>"
    post_message(client, channel, id="m-2", text="/ticket y")
    assert platform_api.texts()[-1] == "#(not provided) in (not provided), owner (not provided)."


def test_server_errors_are_retried_then_succeed(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, max_retries=3)
    business.script(500, 503)
    ok_before = metric("ok")
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert len(business.calls) == 3
    assert {c.headers["X-Parley-Run-Id"] for c in business.calls} == {str(WorkflowRun.objects.get().pk)}
    assert [c.headers["X-Parley-Attempt"] for c in business.calls] == ["1", "2", "3"]
    assert platform_api.texts() == ["Ticket T-1042 created."]
    run = WorkflowRun.objects.get()
    assert run.status == R.SUCCEEDED and run.attempts == 3 and run.finished_at is not None
    assert metric("ok") == ok_before + 1


def test_rate_limited_by_the_business_system_is_retried(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, max_retries=1)
    business.script(429)
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert len(business.calls) == 2 and platform_api.texts() == ["Ticket T-1042 created."]


def test_retries_are_bounded_and_end_in_an_apology(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, max_retries=2)
    business.script(502, 502, 502, 502)
    failed_before = metric("failed")
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert len(business.calls) == 3
    assert platform_api.texts() == [
        "Sorry, **Create ticket** could not be completed right now. Please try again later."
    ]
    run = WorkflowRun.objects.get()
    assert run.status == R.FAILED and run.attempts == 3 and run.response_status == 502 and run.error == "HTTP 502"
    assert "scripted 502" in run.response_body
    assert metric("failed") == failed_before + 1
    reply = Message.objects.get(role="assistant")
    assert reply.failed and reply.delivered_at is not None


def test_client_error_fails_at_once(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, max_retries=3)
    business.script(422)
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert len(business.calls) == 1
    assert platform_api.texts() == [
        "Sorry, **Create ticket** could not be completed right now. Please try again later."
    ]
    assert WorkflowRun.objects.get().attempts == 1


def test_wrong_signing_secret_is_refused_by_the_business_system(
    client, make_setup, make_workflow, business, platform_api
):
    bot, channel = make_setup()
    make_workflow(bot, signing_secret="not-the-shared-secret")
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert business.calls[0].headers["X-Parley-Signature"].startswith("v1=")
    assert not verify_signature(business.calls[0])
    assert WorkflowRun.objects.get().response_status == 401
    assert "Sorry" in platform_api.texts()[0]


def test_timeout(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, timeout_s=1, max_retries=1)
    business.script("slow", "slow")
    timeouts_before = metric("timeout")
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert len(business.calls) == 2
    run = WorkflowRun.objects.get()
    assert run.status == R.FAILED and run.error == "no answer within 1 s" and run.response_status is None
    assert "Sorry" in platform_api.texts()[0]
    assert metric("timeout") == timeouts_before + 1


def test_unreachable_business_system(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, url="http://127.0.0.1:9/tickets", max_retries=1)
    post_message(client, channel, id="m-1", text="/ticket printer")
    run = WorkflowRun.objects.get()
    assert run.status == R.FAILED and run.attempts == 2 and run.error.startswith("network error")
    assert "Sorry" in platform_api.texts()[0]


# --- confirmation --------------------------------------------------------------------------------


def test_confirm_with_yes(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="m-1", text="/ticket printer is broken")
    (prompt,) = platform_api.texts()
    assert "Create ticket" in prompt and "printer is broken" in prompt and "yes" in prompt and "no" in prompt
    assert business.calls == [] and WorkflowRun.objects.get().status == R.PENDING_CONFIRMATION
    post_message(client, channel, id="m-2", text="Yes!")
    assert len(business.calls) == 1 and platform_api.texts()[1:] == ["Ticket T-1042 created."]
    assert llm.calls == 0
    run = WorkflowRun.objects.get()
    assert run.status == R.SUCCEEDED and run.confirmed_by.platform_message_id == "m-2"
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"workflow.confirmed", "workflow.called"} <= actions
    called = AuditLog.objects.get(action="workflow.called")
    assert called.detail["outcome"] == "ok" and called.detail["run"] == run.pk
    assert "whsec" not in json.dumps(list(AuditLog.objects.values_list("detail", flat=True)))


def test_cancel_with_no(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    cancelled_before = metric("cancelled")
    post_message(client, channel, id="m-1", text="/ticket printer")
    post_message(client, channel, id="m-2", text="cancel")
    assert platform_api.texts()[1] == "Cancelled — **Create ticket** was not run."
    post_message(client, channel, id="m-3", text="yes")  # nothing pending any more: an ordinary message
    assert business.calls == [] and llm.calls == 1
    assert WorkflowRun.objects.get().status == R.CANCELLED
    assert metric("cancelled") == cancelled_before + 1


def test_anything_else_cancels_and_is_answered_as_usual(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    llm.set(text="We open at 9.")
    post_message(client, channel, id="m-1", text="/ticket printer")
    post_message(client, channel, id="m-2", text="when do you open?")
    assert platform_api.texts()[1:] == ["(The pending **Create ticket** was cancelled.)", "We open at 9."]
    assert WorkflowRun.objects.get().status == R.CANCELLED and business.calls == []
    # The notice is not part of what the model sees.
    assert [m["content"] for m in llm.requests[-1].json()["messages"] if m["role"] == "assistant"] == []


def test_expired_confirmation_is_never_run(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    expired_before = metric("expired")
    post_message(client, channel, id="m-1", text="/ticket printer")
    WorkflowRun.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    post_message(client, channel, id="m-2", text="yes")
    assert business.calls == [] and llm.calls == 0
    assert platform_api.texts()[1] == (
        "That confirmation has expired, so **Create ticket** was not run. Send the request again if you still need it."
    )
    run = WorkflowRun.objects.get()
    assert run.status == R.CANCELLED and run.error == "confirmation expired"
    assert metric("expired") == expired_before + 1


def test_default_expiry_is_ten_minutes(client, make_setup, make_workflow, business, platform_api):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="m-1", text="/ticket printer")
    run = WorkflowRun.objects.get()
    assert timedelta(minutes=9) < run.expires_at - run.created_at <= timedelta(minutes=10, seconds=1)
    assert "10 min" in platform_api.texts()[0]


def test_two_yes_call_once(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="m-1", text="/ticket printer")
    post_message(client, channel, id="m-2", text="yes")
    post_message(client, channel, id="m-3", text="确认")
    assert len(business.calls) == 1
    assert platform_api.texts().count("Ticket T-1042 created.") == 1


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="concurrent writers need PostgreSQL"
)
def test_two_simultaneous_yes_call_once(make_setup, make_workflow, business, platform_api, llm):
    """Two workers handle two "yes" at the same moment: one conditional UPDATE wins."""
    import threading

    from django.db import connection
    from django.test import Client

    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(Client(), channel, id="m-1", text="/ticket printer")
    barrier = threading.Barrier(2)

    def say_yes(i: int) -> None:
        try:
            barrier.wait(timeout=5)
            post_message(Client(), channel, id=f"y-{i}", text="yes")
        finally:
            connection.close()

    threads = [threading.Thread(target=say_yes, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(business.calls) == 1
    assert platform_api.texts().count("Ticket T-1042 created.") == 1


def test_other_users_in_a_group_cannot_confirm(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="g-1", chat="room", user="u1", group=True, text="/ticket printer")
    post_message(client, channel, id="g-2", chat="room", user="u2", group=True, text="yes")
    assert business.calls == [] and WorkflowRun.objects.get().status == R.PENDING_CONFIRMATION
    post_message(client, channel, id="g-3", chat="room", user="u1", group=True, text="yes")
    assert len(business.calls) == 1 and platform_api.texts()[-1] == "Ticket T-1042 created."


def test_chinese_user_gets_chinese_texts(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True, reply_template="")
    post_message(client, channel, id="m-1", text="/ticket 三楼的打印机坏了")
    prompt = platform_api.texts()[0]
    assert "即将执行「Create ticket」" in prompt and "确认" in prompt and "取消" in prompt
    assert "三楼的打印机坏了" in prompt
    post_message(client, channel, id="m-2", text="确认")
    assert platform_api.texts()[1] == "已完成：「Create ticket」。"
    assert business.calls[0].json()["language"] == "zh"

    business.script(400)
    post_message(client, channel, id="m-3", text="/ticket 打印机又坏了")
    post_message(client, channel, id="m-4", text="是")
    assert platform_api.texts()[-1] == "抱歉，「Create ticket」暂时无法完成，请稍后再试。"
    post_message(client, channel, id="m-5", text="/ticket 还是坏的")
    post_message(client, channel, id="m-6", text="取消")
    assert platform_api.texts()[-1] == "已取消，「Create ticket」未执行。"
    assert llm.calls == 0


# --- crashes and redeliveries ----------------------------------------------------------------------


def test_message_handled_again_after_a_crash_calls_and_tells_once(
    client, make_setup, make_workflow, business, platform_api
):
    from apps.conversations.pipeline.process import process_inbound

    bot, channel = make_setup()
    make_workflow(bot)
    post_message(client, channel, id="m-1", text="/ticket printer")
    post_message(client, channel, id="m-1", text="/ticket printer")  # the platform redelivers it
    # The worker is presumed dead before it finished the message: it is handed out again.
    InboundMessage.objects.update(status=InboundMessage.Status.RECEIVED, reply=None)
    process_inbound(InboundMessage.objects.get().pk)
    assert len(business.calls) == 1 and platform_api.texts() == ["Ticket T-1042 created."]
    assert WorkflowRun.objects.count() == 1
    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED


def test_prompt_not_stored_before_a_crash_is_sent_when_handled_again(
    client, make_setup, make_workflow, business, platform_api
):
    from apps.conversations.pipeline.process import process_inbound

    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    post_message(client, channel, id="m-1", text="/ticket printer")
    Message.objects.filter(role="assistant").delete()  # as if the worker died before storing the prompt
    InboundMessage.objects.update(status=InboundMessage.Status.RECEIVED, reply=None)
    process_inbound(InboundMessage.objects.get().pk)
    assert len(platform_api.texts()) == 2 and platform_api.texts()[1] == platform_api.texts()[0]
    assert WorkflowRun.objects.get().status == R.PENDING_CONFIRMATION
    post_message(client, channel, id="m-2", text="yes")
    assert len(business.calls) == 1 and platform_api.texts()[-1] == "Ticket T-1042 created."


def test_result_that_could_not_be_sent_is_sent_later_without_calling_again(
    client, make_setup, make_workflow, business, platform_api
):
    from apps.workflows.tasks import call_workflow

    bot, channel = make_setup()
    make_workflow(bot)
    platform_api.status = 503  # the IM platform is down when the result is ready
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert len(business.calls) == 1 and platform_api.sent == []
    run = WorkflowRun.objects.get()
    assert run.status == R.SUCCEEDED and run.reply.delivered_at is None
    platform_api.status = 200
    call_workflow.apply(args=[run.pk])  # the task's retry, later
    call_workflow.apply(args=[run.pk])  # and once more, for good measure
    assert platform_api.texts() == ["Ticket T-1042 created."] and len(business.calls) == 1
    assert Message.objects.filter(role="assistant").count() == 1


def test_language_of_a_bare_command_follows_the_conversation(
    client, make_setup, make_workflow, business, platform_api, llm
):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    make_workflow(bot, name="工单", trigger_value="/工单", confirmation_required=True)
    post_message(client, channel, id="c-1", chat="c1", user="u1", text="/工单")
    assert platform_api.texts()[-1].startswith("即将执行「工单」。")
    post_message(client, channel, id="m-1", chat="c2", user="u2", text="你好，打印机怎么报修？")
    post_message(client, channel, id="c-2", chat="c2", user="u2", text="/ticket")
    assert platform_api.texts()[-1].startswith("即将执行「Create ticket」。")
    post_message(client, channel, id="c-3", chat="c3", user="u3", text="/ticket")
    assert platform_api.texts()[-1].startswith("I'm about to run **Create ticket**.")


def test_blocked_networks_are_never_called(client, make_setup, make_workflow, business, platform_api, settings):
    bot, channel = make_setup()
    make_workflow(bot, max_retries=3)
    settings.PARLEY_OUTBOUND_BLOCKED_NETWORKS = "127.0.0.0/8,169.254.0.0/16"  # a multi-tenant install
    settings.PARLEY_OUTBOUND_ALLOWED_NETWORKS = ""
    post_message(client, channel, id="m-1", text="/ticket printer")
    assert business.calls == []
    run = WorkflowRun.objects.get()
    assert run.status == R.FAILED and run.attempts == 0 and "127.0.0.1 is in a network Parley may not call" in run.error
    assert "Sorry" in platform_api.texts()[0]


def test_chinese_keyword(client, make_setup, make_workflow, business, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, name="报修", trigger="keyword", trigger_value="报修", reply_template="工单 {{id}} 已创建。")
    post_message(client, channel, id="m-1", text="我要报修：三楼打印机卡纸")
    assert platform_api.texts() == ["工单 T-1042 已创建。"]
    body = business.calls[0].json()
    assert body["text"] == "我要报修：三楼打印机卡纸" and body["language"] == "zh"
    assert llm.calls == 0
