"""The agents' inbox: the /ws/inbox/ socket (the real ASGI app, the staff session cookie) and the
admin pages and actions an agent uses, with tenants kept apart."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client

from apps.conversations.models import Feedback
from apps.conversations.review import record_feedback
from apps.inbox.models import CannedReply, Handoff
from tests.platforms.web.conftest import Communicator

from .conftest import QUESTION, answers, feishu_sends, user_writes

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "testserver"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def socket(user=None, *, origin: str = f"http://{HOST}") -> Communicator:
    """A communicator on the real ASGI app carrying ``user``'s admin session (make it outside the
    event loop: signing in writes the session)."""
    from config.asgi import application

    headers = [(b"host", HOST.encode()), (b"origin", origin.encode())]
    if user is not None:
        headers.append((b"cookie", f"sessionid={signed_in(user).cookies['sessionid'].value}".encode()))
    return Communicator(application, "/ws/inbox/", headers=headers)


def ask_for_a_person(client) -> Handoff:
    user_writes(client, "ev-1", QUESTION)
    user_writes(client, "ev-2", QUESTION)
    for answer in answers():
        record_feedback(message=answer, rating=1, source=Feedback.Source.BUTTON)
    return Handoff.objects.get()


def test_only_staff_who_answer_users_may_open_the_socket(feishu, agents):
    refused = [socket(None), socket(agents["reviewer"]), socket(agents["ann"], origin="https://evil.example.com")]
    welcome = socket(agents["ann"])

    async def scenario():
        for comm in refused:  # nobody, a reviewer, and an agent's session used by another site's page
            connected, _ = await comm.connect()
            assert not connected
        connected, _ = await welcome.connect()
        assert connected
        await welcome.disconnect()

    async_to_sync(scenario)()


def test_the_inbox_updates_live_for_its_tenant_only(client, feishu, agents):
    mine, theirs = socket(agents["ann"]), socket(agents["stranger"])

    async def scenario():
        assert (await mine.connect())[0] and (await theirs.connect())[0]
        handoff = await sync_to_async(ask_for_a_person)(client)
        event = await mine.receive_json_from()
        assert event == {"type": "event", "kind": "requested", "handoff": handoff.pk, "state": "waiting"}
        assert await theirs.receive_nothing(timeout=1)
        # The user writes again while waiting: the agent's inbox hears of it (the gate's part is
        # tested in test_gate.py; here the service it calls).
        from apps.inbox.services import user_wrote

        await sync_to_async(user_wrote)(handoff)
        assert (await mine.receive_json_from())["kind"] == "message"
        await mine.disconnect()
        await theirs.disconnect()

    async_to_sync(scenario)()


def test_an_agent_takes_over_and_replies_from_the_admin(client, feishu, fake_server, agents):
    handoff = ask_for_a_person(client)
    ann, bob = signed_in(agents["ann"]), signed_in(agents["bob"])
    CannedReply.objects.create(tenant=handoff.tenant, title="Thanks", text="Thank you for waiting!")

    assert ann.get("/admin/inbox/").status_code == 200
    (row,) = ann.get("/admin/inbox/queue.json").json()["handoffs"]
    assert row["id"] == handoff.pk and row["platform"] == "feishu" and row["state"] == "waiting"
    assert row["summary"] == f"{QUESTION} / {QUESTION}"

    detail = ann.get(f"/admin/inbox/{handoff.pk}.json").json()
    assert [m["by"] for m in detail["messages"]][:2] == ["user", "bot"]
    assert detail["canned"] == [{"id": detail["canned"][0]["id"], "title": "Thanks", "text": "Thank you for waiting!"}]

    assert ann.post(f"/admin/inbox/{handoff.pk}/claim/").json()["handoff"]["mine"] is True
    taken = bob.post(f"/admin/inbox/{handoff.pk}/claim/")
    assert taken.status_code == 409 and taken.json()["error"] == "ann is already handling this conversation."
    assert bob.get("/admin/inbox/queue.json").json()["handoffs"][0]["agent"] == "ann"

    sent = ann.post(
        f"/admin/inbox/{handoff.pk}/reply/",
        data=json.dumps({"text": "Ann here: *on it*."}),
        content_type="application/json",
    )
    assert sent.status_code == 200
    assert feishu_sends(fake_server)[-1]["card"]["elements"][0] == {"tag": "markdown", "content": "Ann here: *on it*."}
    empty = ann.post(
        f"/admin/inbox/{handoff.pk}/reply/", data=json.dumps({"text": " "}), content_type="application/json"
    )
    assert empty.status_code == 400 and empty.json()["error"] == "The reply is empty."
    assert ann.post(f"/admin/inbox/{handoff.pk}/nonsense/").status_code == 404

    assert ann.post(f"/admin/inbox/{handoff.pk}/resolve/").status_code == 200
    assert ann.get("/admin/inbox/queue.json").json()["handoffs"] == []
    assert "finished helping you" in feishu_sends(fake_server)[-1]["text"]


def test_tenants_never_see_each_others_inbox(client, feishu, agents):
    handoff = ask_for_a_person(client)
    stranger = signed_in(agents["stranger"])
    assert stranger.get("/admin/inbox/queue.json").json()["handoffs"] == []
    assert stranger.get(f"/admin/inbox/{handoff.pk}.json").status_code == 404
    refused = stranger.post(f"/admin/inbox/{handoff.pk}/claim/")
    assert refused.status_code == 404 and "ann" not in refused.content.decode()
    reviewer = signed_in(agents["reviewer"])
    assert reviewer.get("/admin/inbox/").status_code == 403
    assert reviewer.post(f"/admin/inbox/{handoff.pk}/claim/").status_code == 403
    assert Handoff.objects.get().state == "waiting"


def test_the_sidebar_shows_agents_the_inbox(client, feishu, agents):
    page = signed_in(agents["ann"]).get("/admin/inbox/").content.decode()
    assert 'href="/admin/inbox/"' in page
    page = signed_in(agents["reviewer"]).get("/admin/").content.decode()
    assert 'href="/admin/inbox/"' not in page


def test_handoff_times_on_the_dashboard_and_in_prometheus(client, feishu, agents, settings):
    handoff = ask_for_a_person(client)
    ann = signed_in(agents["ann"])
    ann.post(f"/admin/inbox/{handoff.pk}/claim/")
    ann.post(f"/admin/inbox/{handoff.pk}/reply/", data={"text": "hello"})
    ann.post(f"/admin/inbox/{handoff.pk}/resolve/")

    page = signed_in(agents["owner"]).get("/admin/").content.decode()
    assert 'data-testid="handoff-card"' in page
    agents_table = page.split('data-testid="handoff-agents"')[1].split("</table>")[0]
    assert "<td>ann</td><td>1</td>" in agents_table.replace("\n", "")
    assert "<td>ann</td>" not in signed_in(agents["stranger"]).get("/admin/").content.decode()

    Handoff.objects.create(tenant=handoff.tenant, bot=handoff.bot, conversation=handoff.conversation, reason="command")
    metrics = client.get("/metrics").content.decode()
    assert 'parley_handoff_waiting{tenant="im-co"} 1.0' in metrics
    ann_id = agents["ann"].pk
    assert f'parley_handoff_resolution_seconds_count{{agent="{ann_id}",bot="support",tenant="im-co"}}' in metrics


def test_owners_set_up_handoff_and_agents_do_not(client, feishu, agents):
    bot, channel = feishu
    owner = signed_in(agents["owner"])
    assert owner.get("/admin/inbox/handoffsettings/add/").status_code == 200
    refused = owner.post(
        "/admin/inbox/handoffsettings/add/",
        data={"bot": bot.pk, "enabled": "on", "phrases": "转人工", "opens_at": "18:00", "closes_at": "09:00",
              "open_days": "12389", "timezone": "Mars/Base", "idle_timeout_minutes": "30",
              "notify_channel": channel.pk, "notify_chat_id": ""},
    )  # fmt: skip
    assert refused.status_code == 200  # the form again, with what is wrong
    form = refused.context["adminform"].form
    assert set(form.errors) == {"timezone", "open_days", "closes_at", "notify_chat_id"}
    assert signed_in(agents["ann"]).get("/admin/inbox/handoffsettings/add/").status_code == 403
    assert signed_in(agents["ann"]).get("/admin/inbox/cannedreply/").status_code == 403
