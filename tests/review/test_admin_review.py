"""Staff review in the admin: filters, search, transcript figures, masking and revealing, flagging
and corrections, knowledge from a correction, exports, and what reviewers may not do."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.bots.models import KnowledgeEntry
from apps.conversations.models import Conversation, Feedback, Message
from apps.conversations.review import record_feedback
from apps.core.models import AuditLog
from tests.factories import PASSWORD, make_channel
from tests.review.conftest import EMAIL, PHONE, make_conversation, make_turn

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:conversations_conversation_changelist"


def login(client, username):
    assert client.login(username=username, password=PASSWORD)
    return client


def transcript_url(conv):
    return reverse("admin:conversations_conversation_change", args=[conv.pk])


def shown(client, **params):
    resp = client.get(reverse(CHANGELIST), params)
    assert resp.status_code == 200, resp.content[:500]
    return {c.pk for c in resp.context["cl"].result_list}


@pytest.fixture
def many(world):
    """Tenant A gets a varied set of conversations to filter."""
    a = world["tenant-a"]
    base = a["conv"]
    slack_bot_channel = make_channel(a["bot"], platform="slack", key="slack-a")
    old = timezone.now() - timedelta(days=10)
    convs = {"base": base}
    convs["zh"] = make_conversation(a["channel"], chat_id="c-zh", language="zh")
    make_turn(convs["zh"], "怎么退货？", "请在订单页面申请退货。", fallback_used=True)
    convs["failed"] = make_conversation(slack_bot_channel, chat_id="c-failed")
    make_turn(convs["failed"], "status?", "Sorry, I can't answer right now.", failed=True, source="failure")
    convs["old"] = make_conversation(a["channel"], chat_id="c-old")
    Conversation.objects.filter(pk=convs["old"].pk).update(started_at=old, last_activity_at=old)
    make_turn(convs["old"], "invoice copy", "Download it from Billing.", at=old)
    record_feedback(message=base.messages.get(role="assistant"), rating=5, source="page")
    _, low = make_turn(convs["zh"], "还有别的办法吗？", "没有。")
    record_feedback(message=low, rating=1, source="button")
    return convs


def test_filters_narrow_the_conversation_list(client, world, many):
    login(client, "admin-a")
    every = {c.pk for c in many.values()}
    assert shown(client) == every  # tenant B's conversation is not listed
    assert shown(client, channel__platform="slack") == {many["failed"].pk}
    assert shown(client, language="zh") == {many["zh"].pk}
    assert shown(client, fallback="1") == {many["zh"].pk}
    assert shown(client, fallback="0") == every - {many["zh"].pk}
    assert shown(client, failed="1") == {many["failed"].pk}
    assert shown(client, rating="5") == {many["base"].pk}
    assert shown(client, rating="1") == {many["zh"].pk}
    assert shown(client, rating="low") == {many["zh"].pk}
    assert shown(client, rating="unrated") == {many["failed"].pk, many["old"].pk}
    today = timezone.localdate()
    assert shown(client, date_from=(today - timedelta(days=1)).isoformat()) == every - {many["old"].pk}
    assert shown(client, date_to=(today - timedelta(days=5)).isoformat()) == {many["old"].pk}
    assert shown(client, date_from="not-a-date") == every
    assert shown(client, bot__id__exact=world["tenant-a"]["bot"].pk) == every
    assert shown(client, q="退货") == {many["zh"].pk}
    assert shown(client, q="password") == {many["base"].pk}
    assert shown(client, q="Open Settings") == {many["base"].pk}  # answers are searched too


def test_flagged_filter_and_tenant_filter(client, world, many):
    login(client, "root")
    a, b = world["tenant-a"], world["tenant-b"]
    assert b["conv"].pk in shown(client)
    assert shown(client, tenant__id__exact=b["tenant"].pk) == {b["conv"].pk}
    login(client, "reviewer-a")
    client.post(
        reverse("admin:conversations_conversation_review", args=[a["conv"].pk, a["answer"].pk]), {"flagged": "on"}
    )
    assert shown(client, flagged__exact="1") == {a["conv"].pk}


def test_tenant_filter_offers_only_the_users_tenants(client, world):
    login(client, "admin-a")
    html = client.get(reverse(CHANGELIST)).content.decode()
    # One tenant: no tenant column or filter to show its name (1366 px lists), its conversation listed.
    assert reverse("admin:conversations_conversation_change", args=[world["tenant-a"]["conv"].pk]) in html
    assert "TENANT-B Corp" not in html


def test_transcript_reads_like_a_chat_with_figures_and_rating(client, world):
    a = world["tenant-a"]
    answer = a["answer"]
    Message.objects.filter(pk=answer.pk).update(
        fallback_used=True,
        attempts=[
            {"model": "primary", "provider": "openai", "outcome": "timeout", "latency_ms": 3000, "error": "timed out"},
            {"model": "backup", "provider": "anthropic", "outcome": "ok", "latency_ms": 750, "error": ""},
        ],
    )
    record_feedback(message=answer, rating=4, comment=f"call me on {PHONE}", source="page")
    login(client, "reviewer-a")
    resp = client.get(transcript_url(a["conv"]))
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'class="turn user' in html and 'class="turn assistant' in html
    assert "gpt-test" in html and "750 ms" in html and "120 → 45 tokens" in html and "0.000330" in html
    assert "fallback" in html and "2 model attempts" in html and "timeout" in html and "backup" in html
    assert "★★★★☆" in html
    # PII is masked: the question's phone, the answer's e-mail, the comment, the user's name.
    for secret in (PHONE, EMAIL, "Li Lei"):
        assert secret not in html
    assert "138*******78" in html or "138******78" in html
    assert "l***@example.com" in html


def test_reveal_needs_the_permission_and_is_audited(client, world):
    conv = world["tenant-a"]["conv"]
    reveal = reverse("admin:conversations_conversation_reveal", args=[conv.pk])
    login(client, "reviewer-a")
    assert client.post(reveal).status_code == 403
    assert PHONE not in client.get(transcript_url(conv)).content.decode()
    assert not AuditLog.objects.filter(action="conversation.reveal_pii").exists()

    login(client, "revealer-a")
    page = client.get(transcript_url(conv)).content.decode()
    assert "Reveal personal data" in page and PHONE not in page
    assert client.post(reveal).status_code == 302
    page = client.get(transcript_url(conv)).content.decode()
    assert PHONE in page and EMAIL in page and "Li Lei" in page
    log = AuditLog.objects.get(action="conversation.reveal_pii")
    assert log.actor.username == "revealer-a" and log.target == f"conversation:{conv.pk}"
    assert log.tenant_id == conv.tenant_id
    # Masking again.
    client.post(reveal, {"hide": "1"})
    assert PHONE not in client.get(transcript_url(conv)).content.decode()


def test_searching_by_personal_data_needs_the_reveal_permission(client, world):
    # The base conversation's question holds PHONE and its answer EMAIL; a masked list that still
    # answered "who wrote 13812345678?" would reveal it all the same.
    conv = world["tenant-a"]["conv"]
    for username in ("reviewer-a", "admin-a"):
        login(client, username)
        for term in (PHONE, EMAIL):
            resp = client.get(reverse(CHANGELIST), {"q": term})
            assert resp.status_code == 200
            assert list(resp.context["cl"].result_list) == []
            assert "needs the “reveal PII” permission" in resp.content.decode()
        assert conv.pk in shown(client, q="password")  # ordinary words are searched as before
    login(client, "revealer-a")
    assert shown(client, q=PHONE) == {conv.pk}
    assert shown(client, q=EMAIL) == {conv.pk}


def test_reveal_permission_does_not_cross_tenants(client, world):
    other = world["tenant-b"]["conv"]
    login(client, "revealer-a")
    resp = client.post(reverse("admin:conversations_conversation_reveal", args=[other.pk]))
    assert resp.status_code == 403
    assert client.get(transcript_url(other)).status_code == 302  # "doesn't exist" → index


def test_reviewer_flags_and_corrects_but_cannot_add_knowledge(client, world):
    a = world["tenant-a"]
    conv, answer = a["conv"], a["answer"]
    login(client, "reviewer-a")
    url = reverse("admin:conversations_conversation_review", args=[conv.pk, answer.pk])
    resp = client.post(url, {"flagged": "on", "correction": "Open Settings → Security → Reset password."})
    assert resp.status_code == 302
    answer.refresh_from_db()
    conv.refresh_from_db()
    assert answer.flagged and conv.flagged
    assert answer.correction == "Open Settings → Security → Reset password."
    assert AuditLog.objects.filter(action="conversation.review", target=f"message:{answer.pk}").exists()
    page = client.get(transcript_url(conv)).content.decode()
    assert "Reset password." in page and "Add to knowledge" not in page
    knowledge = reverse("admin:conversations_conversation_knowledge", args=[conv.pk, answer.pk])
    assert client.post(knowledge).status_code == 403
    assert not KnowledgeEntry.objects.exists()
    # Unflagging clears the conversation's flag too.
    client.post(url, {"correction": answer.correction})
    conv.refresh_from_db()
    assert not conv.flagged


def test_review_of_another_tenants_answer_is_refused(client, world):
    b = world["tenant-b"]
    login(client, "reviewer-a")
    url = reverse("admin:conversations_conversation_review", args=[b["conv"].pk, b["answer"].pk])
    assert client.post(url, {"flagged": "on"}).status_code == 403
    # A message id of tenant B under a conversation id of tenant A is not found either.
    a_conv = world["tenant-a"]["conv"]
    url = reverse("admin:conversations_conversation_review", args=[a_conv.pk, b["answer"].pk])
    assert client.post(url, {"flagged": "on"}).status_code == 404
    b["answer"].refresh_from_db()
    assert not b["answer"].flagged


def test_admin_turns_a_correction_into_a_knowledge_entry(client, world):
    a = world["tenant-a"]
    conv, answer = a["conv"], a["answer"]
    login(client, "admin-a")
    client.post(
        reverse("admin:conversations_conversation_review", args=[conv.pk, answer.pk]),
        {"flagged": "on", "correction": "Go to Settings → Security → Reset password."},
    )
    assert "Add to knowledge of" in client.get(transcript_url(conv)).content.decode()
    resp = client.post(reverse("admin:conversations_conversation_knowledge", args=[conv.pk, answer.pk]), follow=True)
    assert resp.status_code == 200
    entry = KnowledgeEntry.objects.get()
    assert entry.bot == a["bot"]
    assert entry.question == f"My phone is {PHONE}, how do I reset my password?"
    assert entry.answer == "Go to Settings → Security → Reset password."
    assert "Knowledge entry" in resp.content.decode()
    assert AuditLog.objects.filter(action="knowledge.from_correction").exists()


def test_reviewer_is_read_only(client, world):
    a = world["tenant-a"]
    login(client, "reviewer-a")
    conv = a["conv"]
    assert client.get(transcript_url(conv)).context["has_change_permission"] is False
    assert client.post(transcript_url(conv), {"flagged": "on", "language": "zh"}).status_code == 403
    delete = reverse("admin:conversations_conversation_delete", args=[conv.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    msg_change = reverse("admin:conversations_message_change", args=[a["answer"].pk])
    assert client.post(msg_change, {"text": "rewritten"}).status_code == 403
    a["answer"].refresh_from_db()
    assert a["answer"].text.startswith("Hi ")
    record_feedback(message=a["answer"], rating=3, source="page")
    fb = Feedback.objects.get()
    assert client.post(reverse("admin:conversations_feedback_change", args=[fb.pk]), {"rating": 5}).status_code == 403
    assert client.get(reverse("admin:conversations_inboundmessage_changelist")).status_code == 403
    assert Conversation.objects.filter(pk=conv.pk).exists()


def test_message_and_feedback_pages_open_the_transcript(client, world):
    a = world["tenant-a"]
    login(client, "reviewer-a")
    resp = client.get(reverse("admin:conversations_message_change", args=[a["answer"].pk]))
    assert resp.status_code == 302 and resp.url == transcript_url(a["conv"]) + f"#m{a['answer'].pk}"
    listing = client.get(reverse("admin:conversations_message_changelist")).content.decode()
    assert PHONE not in listing and EMAIL not in listing


def test_inbound_messages_are_masked_for_admins(client, world):
    login(client, "admin-a")
    inbound = world["tenant-a"]["question"].inbound
    page = client.get(reverse("admin:conversations_inboundmessage_change", args=[inbound.pk])).content.decode()
    assert PHONE not in page and "138" in page


# --- export -------------------------------------------------------------------------------------
def export(client, fmt, unmasked=False, **params):
    name = "admin:conversations_conversation_export" + ("_unmasked" if unmasked else "")
    resp = client.get(reverse(name, kwargs={"fmt": fmt}), params)
    return resp, b"".join(resp.streaming_content).decode() if resp.status_code == 200 else ""


def test_export_csv_has_the_filtered_conversations_masked(client, world, many):
    login(client, "reviewer-a")
    resp, body = export(client, "csv", language="zh")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/csv")
    assert "attachment" in resp["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert {r["conversation_id"] for r in rows} == {str(many["zh"].pk)}
    assert [r["role"] for r in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[1]["fallback_used"] == "True" and rows[1]["tenant"] == "tenant-a"
    assert rows[3]["rating"] == "1" and rows[1]["rating"] == ""
    assert rows[0]["text"] == "怎么退货？"

    _, everything = export(client, "csv")
    assert PHONE not in everything and EMAIL not in everything and "Li Lei" not in everything
    assert "l***@example.com" in everything
    assert str(world["tenant-b"]["conv"].pk) not in {
        r["conversation_id"] for r in csv.DictReader(io.StringIO(everything.lstrip("\ufeff")))
    }
    logs = AuditLog.objects.filter(action="conversation.export")
    assert logs.count() == 2
    assert all(log.detail["format"] == "csv" and log.detail["unmasked"] is False for log in logs)


def test_export_jsonl_one_conversation_per_line(client, world, many):
    login(client, "admin-a")
    resp, body = export(client, "jsonl", rating="5")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body.splitlines()]
    assert [x["conversation_id"] for x in lines] == [many["base"].pk]
    record = lines[0]
    assert record["user_name"] == "L***"
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
    answer = record["messages"][1]
    assert answer["rating"] == 5 and answer["model_name"] == "gpt-test" and answer["tokens_out"] == 45
    assert PHONE not in body and EMAIL not in body


def test_unmasked_export_needs_the_permission(client, world):
    login(client, "reviewer-a")
    resp, _ = export(client, "jsonl", unmasked=True)
    assert resp.status_code == 403
    login(client, "revealer-a")
    resp, body = export(client, "jsonl", unmasked=True)
    assert resp.status_code == 200
    assert PHONE in body and EMAIL in body
    assert str(world["tenant-b"]["conv"].pk) not in [str(json.loads(x)["conversation_id"]) for x in body.splitlines()]
    assert AuditLog.objects.filter(action="conversation.export", detail__unmasked=True).exists()


def test_export_refuses_unknown_formats_and_filters(client, world):
    login(client, "admin-a")
    assert export(client, "xlsx")[0].status_code == 400
    assert export(client, "csv", nonsense__field="1")[0].status_code == 400


def test_csv_export_defuses_spreadsheet_formulas(client, world):
    a = world["tenant-a"]
    make_turn(a["conv"], '=HYPERLINK("http://evil")', "ok")
    login(client, "admin-a")
    _, body = export(client, "csv")
    assert "'=HYPERLINK" in body
