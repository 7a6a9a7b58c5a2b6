"""A model's answer streamed into Telegram: one message that grows by edits (no faster than the
chat's flood limit) and ends as the finished answer with its rating buttons, exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_model, make_tenant
from tests.fakes.llm import FakeOpenAI
from tests.platforms.telegram.fake import FakeTelegramBot

SAMPLES = Path(__file__).resolve().parents[3] / "apps/channels/platforms/telegram/samples"
BOT_TOKEN = "7512345678:AAH-test_token_0123456789abcdefghij"
SECRET = "parley-Secret_Token-0123456789"
CHAT = 412503776
#: 24 words, one piece each: streamed over about 2.4 s at 0.1 s a piece.
ANSWER = (
    "Our support desk is open from nine to five on weekdays, and on Saturdays from ten to two; "
    "outside those hours please leave a message and we answer it the next morning."
)


@pytest.fixture
def llm():
    with FakeOpenAI() as fake:
        fake.set(text=ANSWER, first_token_delay=0.05, token_delay=0.1)
        yield fake


@pytest.fixture
def tg(fake_server):
    return FakeTelegramBot(fake_server, token=BOT_TOKEN, first_message_id=3001, rate_limit=True)


@pytest.fixture
def channel(db, fake_server, llm):
    tenant = make_tenant("acme")
    bot = make_bot(tenant, model=make_model(tenant, endpoint=llm.url, timeout_s=10))
    make_knowledge(bot, "What are your opening hours?", "Nine to five, **Monday to Friday**.")
    creds = {"bot_token": BOT_TOKEN, "secret_token": SECRET, "bot_username": "acme_helpdesk_bot"}
    return make_channel(bot, platform="telegram", key="acme-tg", credentials=creds, api_base=fake_server.url)


def ask(client, text: str, update_id: int = 731934120):
    update = json.loads((SAMPLES / "private_message.json").read_bytes())
    update["update_id"] = update_id
    update["message"]["text"] = text
    response = client.post(
        "/webhooks/telegram/acme-tg/",
        data=json.dumps(update),
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_streamed_answer_grows_in_one_message_and_ends_as_the_answer_with_its_buttons(client, channel, tg, llm):
    ask(client, "When can I reach you?")

    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED
    chat = tg.chat(CHAT)
    assert len(chat) == 1, "the user sees one message, not a partial one and a final one"
    message = chat[0]
    assert message["text"].startswith(ANSWER)
    assert "Rate this answer" in message["text"]
    buttons = message["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["👍 Helpful", "👎 Not helpful"]

    assert len(tg.sent) == 1
    first = tg.sent[0].json()
    assert ANSWER.startswith(first["text"]) and len(first["text"]) < len(ANSWER)  # the first words, at once
    assert "reply_markup" not in first
    versions = message["versions"]
    partial, final = versions[:-1], versions[-1]
    assert partial, "the answer grew by edits while the model wrote it"
    assert all(ANSWER.startswith(v.strip()) for v in partial)
    assert len(partial) <= 3  # ~2.4 s of writing, at most one edit a second
    assert final == message["text"] and versions.count(final) == 1  # the final text replaced it once
    assert [bool(e.json().get("reply_markup")) for e in tg.text_edits] == [False] * len(partial) + [True]
    assert tg.refused == 0, "no edit was refused by the flood limit"


@pytest.mark.django_db(transaction=True)
def test_streaming_off_sends_one_finished_message(client, channel, tg, llm):
    channel.streaming = False
    channel.save()

    ask(client, "When can I reach you?")

    assert len(tg.sent) == 1 and tg.text_edits == []
    assert tg.sent[0].json()["text"].startswith(ANSWER)
    assert tg.sent[0].json()["reply_markup"]["inline_keyboard"]


@pytest.mark.django_db(transaction=True)
def test_an_instant_answer_is_one_message_without_edits(client, channel, tg, llm):
    ask(client, "What are your opening hours?")

    assert len(tg.sent) == 1 and tg.text_edits == []
    assert tg.sent[0].json()["text"].startswith("Nine to five, <b>Monday to Friday</b>.")
    assert llm.calls == 0


@pytest.mark.django_db(transaction=True)
def test_an_answer_that_fails_midway_keeps_one_message_with_what_was_written(client, channel, tg, llm, settings):
    """The model stalls after a few words: the user keeps one message (the words written), not a
    partial plus a failure notice."""
    settings.LLM_STREAM_IDLE_TIMEOUT = 0.5
    llm.then(text="Our support desk is open", first_token_delay=0.05, token_delay=3)

    ask(client, "When can I reach you?")

    chat = tg.chat(CHAT)
    assert len(chat) == 1
    assert chat[0]["text"].startswith("Our\n")  # the one word written before the stall
    assert tg.refused == 0


def _stream(channel, tg, *, interval: float):
    from apps.channels.platforms.base import Target
    from apps.channels.platforms.registry import get_adapter
    from apps.channels.platforms.streaming import MessageStream

    return MessageStream(get_adapter("telegram"), channel, Target(chat_id=str(CHAT)), interval=interval)


@pytest.mark.django_db(transaction=True)
def test_a_partial_answer_that_will_not_be_finished_is_deleted(channel, tg):
    """The sender wrote again (or another worker took the message over): the partial message goes."""
    stream = _stream(channel, tg, interval=1.0)
    stream("Our support desk ")
    assert [m["text"] for m in tg.chat(CHAT)] == ["Our support desk"]
    stream.abandon()
    assert tg.chat(CHAT) == []
    stream("is open")  # late pieces start nothing new
    assert tg.chat(CHAT) == [] and len(tg.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_an_edit_refused_by_the_flood_limit_pauses_the_stream_and_the_answer_still_replaces_it(channel, tg):
    from apps.channels.platforms.base import OutboundReply

    stream = _stream(channel, tg, interval=0.0)  # faster than Telegram allows, on purpose
    for word in ANSWER.split()[:8]:
        stream(word + " ")
    assert tg.refused == 1  # a third call within a second: refused, and the stream stopped editing
    updates = stream.updates
    stream(" ".join(ANSWER.split()[8:]))
    assert stream.updates == updates
    stream.finish(OutboundReply(markdown=ANSWER))  # refused at first too: asked again a second later
    assert [m["text"] for m in tg.chat(CHAT)] == [ANSWER]
    assert tg.refused in (1, 2)  # 2 unless a busy machine let a second pass before the final edit


@pytest.mark.django_db(transaction=True)
def test_a_final_edit_that_fails_removes_the_partial_and_the_retry_delivers_one_message(
    client, channel, tg, llm, fake_server
):
    from apps.conversations import delivery
    from apps.conversations.models import Message

    def final_edit_down(req):  # partial edits pass; the one with the buttons meets an outage
        if req.json().get("reply_markup"):
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        return tg._edit_text(req)

    fake_server.route("POST", f"/bot{BOT_TOKEN}/editMessageText", final_edit_down)
    ask(client, "When can I reach you?")

    assert tg.chat(CHAT) == [], "the partial answer is not left behind"
    reply = Message.objects.get(role="assistant")
    assert reply.delivered_at is None and reply.delivery_state == "pending"

    fake_server.route("POST", f"/bot{BOT_TOKEN}/editMessageText", tg._edit_text)  # the platform is back
    assert delivery.deliver_due(reply.pk, reply.delivery_attempts) == "delivered"
    chat = tg.chat(CHAT)
    assert len(chat) == 1 and chat[0]["text"].startswith(ANSWER)
    assert chat[0]["reply_markup"]["inline_keyboard"]


@pytest.mark.django_db(transaction=True)
def test_a_final_edit_refused_for_good_sends_the_answer_as_a_new_message_at_once(client, channel, tg, llm, fake_server):
    from apps.conversations.models import Message

    def final_edit_refused(req):  # partial edits pass; the final one is refused as Telegram refuses it
        if req.json().get("reply_markup"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message can't be edited"}
        return tg._edit_text(req)

    fake_server.route("POST", f"/bot{BOT_TOKEN}/editMessageText", final_edit_refused)
    ask(client, "When can I reach you?")

    chat = tg.chat(CHAT)
    assert len(chat) == 1, "one message: the partial answer removed, the answer sent anew"
    assert chat[0]["text"].startswith(ANSWER) and chat[0]["reply_markup"]["inline_keyboard"]
    reply = Message.objects.get(role="assistant")
    assert reply.delivered_at is not None and reply.delivery_state != "pending"
    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED
