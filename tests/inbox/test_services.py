"""Human handoff services through the fake Feishu API: the rule that asks for a person, claims,
replies, hand-backs, the idle sweep, tenant isolation, the audit log and the metrics."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.conversations.models import Feedback
from apps.conversations.review import record_feedback
from apps.core.models import AuditLog
from apps.inbox import services
from apps.inbox.models import Handoff, HandoffSettings

from .conftest import QUESTION, answers, feishu_sends, the_conversation, user_writes

pytestmark = pytest.mark.django_db(transaction=True)


def two_thumbs_down(client) -> Handoff:
    """The user asks twice, gets two answers and rates both down: the rule opens a handoff."""
    user_writes(client, "ev-1", QUESTION)
    user_writes(client, "ev-2", QUESTION)
    first, second = answers()
    record_feedback(message=first, rating=1, source=Feedback.Source.BUTTON)
    assert not Handoff.objects.exists()  # one thumbs-down is not yet a pattern
    record_feedback(message=second, rating=1, source=Feedback.Source.BUTTON)
    return Handoff.objects.get()


def test_two_thumbs_down_in_a_row_queue_the_conversation_and_tell_the_user(client, feishu, fake_server):
    handoff = two_thumbs_down(client)
    assert handoff.state == "waiting" and handoff.reason == "rule"
    assert handoff.summary == f"{QUESTION} / {QUESTION}"  # the user's words until the bot summarises
    told = feishu_sends(fake_server)[-1]
    assert "asked a colleague to take over" in told["text"]
    assert told["path"] == "/open-apis/im/v1/messages/om_ev-2/reply"  # in the user's own chat
    assert AuditLog.objects.filter(action="handoff.request", target=f"conversation:{the_conversation().pk}").exists()


def test_a_thumbs_up_between_breaks_the_row(client, feishu):
    for i in range(3):
        user_writes(client, f"ev-{i}", QUESTION)
    a, b, c = answers()
    record_feedback(message=a, rating=1, source="button")
    record_feedback(message=b, rating=5, source="button")
    record_feedback(message=c, rating=1, source="button")
    assert not Handoff.objects.exists()


def test_agents_reply_arrives_at_feishu_in_feishus_format(client, feishu, fake_server, agents):
    handoff = two_thumbs_down(client)
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    sent_before = len(feishu_sends(fake_server))
    message = services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="Hi, I'm **Ann**. Let me check.")

    (reply,) = feishu_sends(fake_server)[sent_before:]
    assert reply["path"] == "/open-apis/im/v1/messages/om_ev-2/reply"
    assert reply["body"]["msg_type"] == "interactive"
    assert reply["card"]["elements"][0] == {"tag": "markdown", "content": "Hi, I'm **Ann**. Let me check."}
    assert reply["body"]["uuid"].startswith(f"parley-{message.pk}")
    message.refresh_from_db()
    assert message.delivered_at is not None and message.source == "agent" and message.author_name == "ann"
    handoff.refresh_from_db()
    assert handoff.first_reply_at is not None
    audited = AuditLog.objects.filter(target=f"conversation:{handoff.conversation_id}")
    actions = list(audited.values_list("action", flat=True))
    assert "handoff.claim" in actions and "handoff.reply" in actions


def test_two_agents_cannot_both_hold_it(client, feishu, agents):
    handoff = two_thumbs_down(client)
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    with pytest.raises(services.HandoffTaken) as taken:
        services.handoff_claim(handoff_id=handoff.pk, user=agents["bob"])
    assert taken.value.holder == "ann" and taken.value.status == 409
    with pytest.raises(services.HandoffTaken):
        services.handoff_reply(handoff_id=handoff.pk, user=agents["bob"], text="me too")
    with pytest.raises(services.HandoffTaken):
        services.handoff_resolve(handoff_id=handoff.pk, user=agents["bob"])
    assert services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"]).agent == agents["ann"]  # again: no-op


def test_simultaneous_claims_have_one_winner(client, feishu, agents):
    handoff = two_thumbs_down(client)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def claim(name: str) -> None:
        barrier.wait()
        try:
            services.handoff_claim(handoff_id=handoff.pk, user=agents[name])
            outcomes[name] = "won"
        except services.HandoffTaken as exc:
            outcomes[name] = f"taken by {exc.holder}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(n,)) for n in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes.values())[1] == "won"
    winner = next(n for n, o in outcomes.items() if o == "won")
    loser = next(n for n in outcomes if n != winner)
    assert outcomes[loser] == f"taken by {winner}"
    assert Handoff.objects.get().agent == agents[winner]
    assert AuditLog.objects.filter(action="handoff.claim").count() == 1


def test_resolve_tells_the_user_with_the_feedback_link(client, feishu, fake_server, agents):
    handoff = two_thumbs_down(client)
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="Done, your parcel is on its way.")
    services.handoff_resolve(handoff_id=handoff.pk, user=agents["ann"])
    handoff.refresh_from_db()
    assert handoff.state == "resolved" and handoff.ended_by == "agent" and handoff.resolved_at
    told = feishu_sends(fake_server)[-1]
    assert "finished helping you" in told["text"]
    # The rating buttons follow the resolved handoff (Feishu: thumbs in the card's action row).
    assert any(e.get("tag") == "action" for e in told["card"]["elements"])
    assert AuditLog.objects.filter(action="handoff.resolve", actor=agents["ann"]).exists()
    with pytest.raises(services.HandoffError):
        services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="one more thing")


def test_silence_hands_back_to_the_bot(client, feishu, fake_server, agents):
    bot, _ = feishu
    HandoffSettings.objects.create(bot=bot, idle_timeout_minutes=10, open_days="1234567", timezone="UTC")
    handoff = two_thumbs_down(client)
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    assert services.handoffs_sweep(now=timezone.now() + timedelta(minutes=9)) == 0
    assert services.handoffs_sweep(now=timezone.now() + timedelta(minutes=11)) == 1
    handoff.refresh_from_db()
    assert handoff.state == "resolved" and handoff.ended_by == "timeout"
    assert "quiet for a while" in feishu_sends(fake_server)[-1]["text"]
    assert AuditLog.objects.filter(action="handoff.timeout").count() == 1
    assert services.handoffs_sweep(now=timezone.now() + timedelta(minutes=30)) == 0  # once


def test_a_conversation_waiting_overnight_is_not_handed_back_before_the_team_is_in(client, feishu):
    bot, _ = feishu
    HandoffSettings.objects.create(bot=bot, idle_timeout_minutes=30, open_days="12345", timezone="UTC")
    handoff = two_thumbs_down(client)
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=ZoneInfo("UTC"))
    Handoff.objects.filter(pk=handoff.pk).update(requested_at=friday_evening, last_activity_at=friday_evening)
    assert services.handoffs_sweep(now=datetime(2026, 12, 6, 12, 0, tzinfo=ZoneInfo("UTC"))) == 0  # Sunday
    assert services.handoffs_sweep(now=datetime(2026, 12, 7, 9, 20, tzinfo=ZoneInfo("UTC"))) == 0  # Monday 09:20
    assert services.handoffs_sweep(now=datetime(2026, 12, 7, 9, 31, tzinfo=ZoneInfo("UTC"))) == 1  # nobody came


def test_agents_of_another_tenant_see_nothing(client, feishu, agents):
    handoff = two_thumbs_down(client)
    for name in ("stranger", "reviewer"):
        with pytest.raises(services.HandoffError) as err:
            services.handoff_claim(handoff_id=handoff.pk, user=agents[name])
        assert err.value.status == 404
    assert services.handoff_tenant_ids(agents["stranger"]) == {agents["stranger"].memberships.get().tenant_id}
    assert Handoff.objects.get().state == "waiting"


def test_an_owner_may_resolve_what_an_agent_holds(client, feishu, agents):
    handoff = two_thumbs_down(client)
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    services.handoff_resolve(handoff_id=handoff.pk, user=agents["owner"])
    assert Handoff.objects.get().state == "resolved"


def test_bad_replies_are_refused_clearly(client, feishu, agents):
    handoff = two_thumbs_down(client)
    with pytest.raises(services.HandoffError, match="Claim the conversation first"):
        services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="hello")
    services.handoff_claim(handoff_id=handoff.pk, user=agents["ann"])
    with pytest.raises(services.HandoffError, match="empty"):
        services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="   ")
    with pytest.raises(services.HandoffError, match="at most"):
        services.handoff_reply(handoff_id=handoff.pk, user=agents["ann"], text="x" * 5000)


def test_times_are_measured_per_bot_and_agent(client, feishu, agents):
    handoff = two_thumbs_down(client)
    ann = agents["ann"]
    labels = {"tenant": "im-co", "bot": "support"}

    def value(name: str, **extra: str) -> float:
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    before = (
        value("parley_handoff_wait_seconds_count"),
        value("parley_handoff_first_reply_seconds_count", agent=str(ann.pk)),
        value("parley_handoff_resolution_seconds_count", agent=str(ann.pk)),
    )
    services.handoff_claim(handoff_id=handoff.pk, user=ann)
    services.handoff_reply(handoff_id=handoff.pk, user=ann, text="hello")
    services.handoff_reply(handoff_id=handoff.pk, user=ann, text="second reply: not a first reply")
    services.handoff_resolve(handoff_id=handoff.pk, user=ann)
    after = (
        value("parley_handoff_wait_seconds_count"),
        value("parley_handoff_first_reply_seconds_count", agent=str(ann.pk)),
        value("parley_handoff_resolution_seconds_count", agent=str(ann.pk)),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


def test_opening_hours_in_the_users_language():
    cfg = HandoffSettings(open_days="12345", timezone="Asia/Shanghai")
    shanghai = ZoneInfo("Asia/Shanghai")
    tuesday_noon = datetime(2026, 12, 1, 12, 0, tzinfo=shanghai)
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=shanghai)
    assert services.requested_text(cfg, "en", now=tuesday_noon) == (
        "I've asked a colleague to take over. Someone will reply here shortly (we're available Mon–Fri, 09:00–18:00)."
    )
    assert "周一至周五 09:00–18:00" in services.requested_text(cfg, "zh", now=tuesday_noon)
    closed = services.requested_text(cfg, "en", now=saturday)
    assert "they will reply here from Mon 09:00" in closed
    assert "同事将于周一 09:00起" in services.requested_text(cfg, "zh", now=saturday)


def test_phrases_and_the_command():
    cfg = HandoffSettings()
    assert services.asks_for_person("/human", cfg) == "command"
    assert services.asks_for_person("/人工", cfg) == "command"
    assert services.asks_for_person("转人工！", cfg) == "phrase"
    assert services.asks_for_person("Talk to a human.", cfg) == "phrase"
    assert services.asks_for_person("can a human read my order history?", cfg) is None
    assert services.asks_for_person("/help", cfg) is None
    cfg.enabled = False
    assert services.asks_for_person("/human", cfg) is None


def test_agents_read_the_inbox_in_chinese():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert services.HandoffTaken("安").message == "安 正在处理这个对话。"
        assert str(Handoff.State.WAITING.label) == "等待中"
