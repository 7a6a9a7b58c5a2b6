"""The /ws/chat/<key>/ consumer, driven with Channels' WebsocketCommunicator on the real ASGI app
(channels-redis when REDIS_URL is set, as in CI). Messages go through accept_inbound and the real
pipeline (tasks run eagerly in tests); answers come back through the channel layer."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync

from apps.channels.platforms.base import OutboundReply, Target
from apps.channels.platforms.registry import get_adapter
from apps.conversations.models import Feedback, InboundMessage, Message
from tests.factories import make_knowledge

from .conftest import communicator, drain, frames_until, issue

pytestmark = pytest.mark.django_db(transaction=True)


def run(coro_fn):
    return async_to_sync(coro_fn)()


def test_socket_without_token_gets_unauthorized_and_4401(chat_channel):
    async def scenario():
        comm = communicator(token=None)
        connected, subprotocol = await comm.connect()
        assert connected and subprotocol == "parley.v1"
        frame = await comm.receive_json_from()
        assert frame["type"] == "error" and frame["code"] == "unauthorized"
        assert (await comm.receive_output())["code"] == 4401

    run(scenario)


def test_forged_and_foreign_tokens_are_refused(chat_channel):
    good = issue(chat_channel).token
    head, payload, sig = good.split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    other = issue(chat_channel).token

    async def scenario():
        for token, key in ((forged, "acme-web"), (other, "acme-web")):
            comm = communicator(key, token=token)
            await comm.connect()
            first = await comm.receive_json_from()
            if token is forged:
                assert first["code"] == "unauthorized"
            else:
                assert first["type"] == "history"
            await comm.disconnect()

    run(scenario)


def test_token_of_another_channel_is_refused(chat_channel):
    from tests.factories import make_channel

    make_channel(chat_channel.bot, platform="web", key="other-web", allowed_origins="*")
    token = issue(chat_channel).token

    async def scenario():
        comm = communicator("other-web", token=token)
        await comm.connect()
        assert (await comm.receive_json_from())["code"] == "unauthorized"
        assert (await comm.receive_output())["code"] == 4401

    run(scenario)


@pytest.mark.parametrize("origin", ["https://evil.example.net", None, "null"])
def test_origins_the_channel_does_not_allow_are_refused_at_the_handshake(chat_channel, origin):
    token = issue(chat_channel).token

    async def scenario():
        connected, _ = await communicator(token=token, origin=origin).connect()
        assert not connected

    run(scenario)


def test_empty_allowed_origins_means_same_origin_only(chat_channel):
    chat_channel.allowed_origins = ""
    chat_channel.save()
    token = issue(chat_channel).token

    async def scenario():
        assert not (await communicator(token=token).connect())[0]  # shop.example.com ≠ Host
        comm = communicator(token=token, origin="https://parley.example.org")  # same as Host
        assert (await comm.connect())[0]
        await comm.disconnect()

    run(scenario)


def test_unknown_or_disabled_channel_is_refused(chat_channel):
    token = issue(chat_channel).token
    chat_channel.enabled = False
    chat_channel.save()

    async def scenario():
        assert not (await communicator(token=token).connect())[0]
        assert not (await communicator("nope-web", token=token).connect())[0]

    run(scenario)


def test_message_is_answered_through_the_pipeline_and_kept_in_history(chat_channel):
    make_knowledge(chat_channel.bot, "What are your opening hours?", "We are open **9 to 5**, Monday to Friday.")
    issued = issue(chat_channel)

    async def scenario():
        comm = communicator(token=issued.token)
        await comm.connect()
        assert await comm.receive_json_from() == {"type": "history", "messages": []}
        await comm.send_json_to({"type": "message", "id": "c-1", "text": "What are your opening hours?"})
        frames = await frames_until(comm, "message")
        answer = frames[-1]
        assert answer["text"] == "We are open **9 to 5**, Monday to Friday."
        assert answer["reply_to"] == "c-1"
        assert answer["id"].startswith("parley-")
        await comm.disconnect()

        # A new socket (a page reload) gets the conversation back.
        again = communicator(token=issued.token)
        await again.connect()
        history = await again.receive_json_from()
        assert [(m["role"], m["text"]) for m in history["messages"]] == [
            ("user", "What are your opening hours?"),
            ("assistant", "We are open **9 to 5**, Monday to Friday."),
        ]
        assert history["messages"][0]["id"] == "c-1"
        assert history["messages"][1]["id"] == answer["id"]
        await again.disconnect()

    run(scenario)
    row = InboundMessage.objects.get()
    assert row.platform_message_id == f"{issued.visitor.visitor_id}:c-1"
    assert row.chat_id == issued.visitor.chat_id and row.user_id == issued.visitor.visitor_id


def test_resent_message_is_accepted_once(chat_channel):
    make_knowledge(chat_channel.bot, "hello", "Hello!")
    token = issue(chat_channel).token

    async def scenario():
        comm = communicator(token=token)
        await comm.connect()
        await comm.receive_json_from()
        await comm.send_json_to({"type": "message", "id": "same-id", "text": "hello"})
        first = await frames_until(comm, "message")
        assert {"type": "ack", "id": "same-id", "duplicate": False} in first
        await comm.send_json_to({"type": "message", "id": "same-id", "text": "hello"})
        resent = await frames_until(comm, "ack")  # waited for, however slow the machine
        resent += await drain(comm)  # then a quiet second to show any second answer
        assert {"type": "ack", "id": "same-id", "duplicate": True} in resent
        assert {f["type"] for f in resent} <= {"typing", "ack"}  # no second answer
        await comm.disconnect()

    run(scenario)
    assert InboundMessage.objects.count() == 1
    assert Message.objects.filter(role="assistant").count() == 1


def test_bad_frames_get_error_frames_and_the_socket_stays_usable(chat_channel, settings):
    settings.WEBCHAT_MAX_MESSAGE_CHARS = 50
    settings.WEBCHAT_FRAME_BURST = 50
    token = issue(chat_channel).token

    async def scenario():
        comm = communicator(token=token)
        await comm.connect()
        await comm.receive_json_from()
        cases = [
            ("not json at all", "bad_frame"),
            ("[1, 2]", "bad_frame"),
            (json.dumps({"type": "launch"}), "unknown_type"),
            (json.dumps({"type": "message", "id": "../../etc", "text": "hi"}), "bad_frame"),
            (json.dumps({"type": "message", "id": "m1", "text": "   "}), "empty_message"),
            (json.dumps({"type": "message", "id": "m2", "text": "x" * 51}), "message_too_long"),
            (json.dumps({"type": "message", "id": "m3", "text": "y" * 40_000}), "frame_too_large"),
            (json.dumps({"type": "feedback", "message_id": "parley-1", "rating": "meh"}), "bad_frame"),
        ]
        for raw, code in cases:
            await comm.send_to(text_data=raw)
            frame = await comm.receive_json_from()
            assert frame["type"] == "error" and frame["code"] == code, (raw[:40], frame)
            assert frame["message"]
        await comm.send_to(bytes_data=b"\x00\x01")
        assert (await comm.receive_json_from())["code"] == "bad_frame"
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from() == {"type": "pong"}
        await comm.disconnect()

    run(scenario)
    assert InboundMessage.objects.count() == 0


def test_flood_is_throttled_then_closed(chat_channel, settings):
    settings.WEBCHAT_FRAMES_PER_SECOND = 1
    settings.WEBCHAT_FRAME_BURST = 3
    settings.WEBCHAT_FLOOD_STRIKES = 10
    token = issue(chat_channel).token

    async def scenario():
        comm = communicator(token=token)
        await comm.connect()
        await comm.receive_json_from()
        for _ in range(40):
            await comm.send_json_to({"type": "ping"})
        got = []
        while True:
            out = await comm.receive_output()
            if out["type"] == "websocket.close":
                assert out["code"] == 4429
                break
            got.append(json.loads(out["text"]))
        assert got[:3] == [{"type": "pong"}] * 3
        errors = [f for f in got if f["type"] == "error"]
        assert errors and all(f["code"] == "rate_limited" for f in errors)
        assert len(errors) < 10  # a flood is not answered frame for frame

    run(scenario)


def test_thumbs_are_stored_as_feedback_on_the_visitors_own_answer_only(chat_channel):
    make_knowledge(chat_channel.bot, "hello", "Hello!")
    mine, theirs = issue(chat_channel), issue(chat_channel)

    async def scenario():
        comm = communicator(token=mine.token)
        await comm.connect()
        await comm.receive_json_from()
        await comm.send_json_to({"type": "message", "id": "q1", "text": "hello"})
        answer = (await frames_until(comm, "message"))[-1]
        await comm.send_json_to({"type": "feedback", "message_id": answer["id"], "rating": "down"})
        assert await comm.receive_json_from() == {"type": "ack", "id": answer["id"], "rating": "down"}
        await comm.send_json_to({"type": "feedback", "message_id": answer["id"], "rating": "up"})
        assert (await comm.receive_json_from())["rating"] == "up"
        await comm.disconnect()

        other = communicator(token=theirs.token)
        await other.connect()
        await other.receive_json_from()
        await other.send_json_to({"type": "feedback", "message_id": answer["id"], "rating": "down"})
        frame = await other.receive_json_from()
        assert frame["type"] == "error" and frame["code"] == "not_found"
        await other.disconnect()

        again = communicator(token=mine.token)
        await again.connect()
        history = await again.receive_json_from()
        assert history["messages"][-1]["rating"] == "up"
        await again.disconnect()

    run(scenario)
    fb = Feedback.objects.get()
    assert (fb.rating, fb.source) == (5, "button")


def test_answer_published_by_a_worker_thread_reaches_every_socket_of_the_conversation(chat_channel):
    """What a Celery worker does: the web adapter's token sink and send, called from another thread
    (its own event loop per call), reach both of the visitor's open tabs but no other visitor."""
    issued, stranger = issue(chat_channel), issue(chat_channel)
    adapter = get_adapter("web")
    target = Target(
        chat_id=issued.visitor.chat_id, user_id=issued.visitor.visitor_id, reply_context={"reply_to": "c-9"}
    )

    def worker():
        sink = adapter.token_sink(chat_channel, target, reply_ref="inbound-7")
        sink("Hel")
        sink.flush()
        sink("lo")
        sink.flush()
        adapter.send(chat_channel, target, OutboundReply(markdown="Hello", idempotency_key="parley-42"))

    async def scenario():
        tabs = [communicator(token=issued.token), communicator(token=issued.token)]
        outsider = communicator(token=stranger.token)
        for comm in [*tabs, outsider]:
            await comm.connect()
            await comm.receive_json_from()
        thread = threading.Thread(target=worker)
        thread.start()
        for comm in tabs:
            frames = await frames_until(comm, "message")
            assert [f["text"] for f in frames if f["type"] == "token"] == ["Hel", "lo"]
            assert frames[0]["reply_ref"] == "inbound-7" and frames[0]["reply_to"] == "c-9"
            assert frames[-1] == {
                "type": "message",
                "id": "parley-42",
                "text": "Hello",
                "feedback_url": "",
                "reply_to": "c-9",
            }
        thread.join()
        assert await outsider.receive_nothing(timeout=0.3)
        for comm in [*tabs, outsider]:
            await comm.disconnect()

    run(scenario)
