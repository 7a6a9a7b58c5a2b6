"""Long-connection mode (``run_connectors``): Slack Socket Mode, DingTalk Stream and Telegram polling
against fake platforms on 127.0.0.1 speaking the real protocols over real sockets; the supervisor's
pick-up of admin changes, one holder per channel, takeover when the holder dies, clean shutdown;
and the admin's refusal of long-connection mode where a platform has none.

Replies run through the whole pipeline (``answering_bot`` answers from a knowledge entry) on the
in-process task pool, as on a single node; what is asserted is what a user would notice: the
answer arrives once, at the platform's send endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from apps.channels.connectors.supervisor import Options, Supervisor
from apps.channels.forms import ChannelForm
from apps.channels.models import Channel
from apps.channels.platforms.feishu.connector import Frame, decode_frame, encode_frame, ping_frame
from apps.conversations.models import Feedback, InboundMessage
from apps.core import metrics
from tests.factories import make_channel
from tests.fakes.connectors import FakeSocketServer, wait_until
from tests.fakes.platforms import sample_json
from tests.fakes.server import FakeServer
from tests.platforms.conftest import ANSWER, DINGTALK_CREDENTIALS, FEISHU_CREDENTIALS, QUESTION
from tests.platforms.dingtalk.fake import FakeDingTalkStream, dingtalk_callback_frame, dingtalk_ping_frame
from tests.platforms.feishu.fake import FakeFeishuLongConnection, install_feishu
from tests.platforms.slack.fake import (
    SLACK_APP_TOKEN,
    SLACK_BOT_TOKEN,
    SLACK_HELLO,
    FakeSlackSocketMode,
    slack_envelope,
    slack_rating_envelope,
)
from tests.platforms.telegram.fake import FakeTelegramPolling, telegram_update

ROOT = Path(__file__).resolve().parents[2]
#: How long a wait for a condition may take before the test fails: generous, since it only bounds a
#: failing test and CI runs on a small, shared machine (the waits end as soon as the condition holds).
WAIT = 20
FAST = Options(poll_seconds=0.2, lock_ttl=2.0, backoff_base=0.05, backoff_max=0.3, stable_seconds=60)
TELEGRAM_TOKEN = "7026491234:AAHfakeTokenForLongPolling_0123456789"
pytestmark = [pytest.mark.timeout(120)]
needs_shared_backends = pytest.mark.skipif(
    settings.EMBEDDED, reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL shared by several processes"
)


@pytest.fixture(autouse=True)
def _inprocess_tasks(settings):
    """The pipeline runs on the in-process pool, off the connection's thread, as on one node."""
    settings.TASKS_MODE = "inprocess"


@contextlib.contextmanager
def supervisor(options: Options = FAST, *, holder: str = ""):
    """A ``Supervisor`` on its own thread and event loop; stopped (as on SIGTERM) on exit."""
    sup = Supervisor(options, holder=holder)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(sup.run(stop)), daemon=True)
    thread.start()
    try:
        yield sup
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
        assert not thread.is_alive(), "the supervisor did not stop"
        loop.close()


@pytest.fixture
def slack_fake():
    with FakeServer() as http, FakeSocketServer(greeting=SLACK_HELLO) as socket:
        yield FakeSlackSocketMode(http, socket)


def slack_channel(bot, fake: FakeSlackSocketMode, **kw) -> Channel:
    return make_channel(
        bot,
        platform="slack",
        key="acme-slack-socket",
        mode=Channel.Mode.LONG_CONNECTION,
        credentials={"app_token": SLACK_APP_TOKEN, "bot_token": SLACK_BOT_TOKEN},
        api_base=fake.http.url,
        **kw,
    )


def answered(fake, n: int = 1, timeout: float = 30):
    wait_until(lambda: len(fake.sent) >= n, timeout, f"{n} repl(y/ies) at the platform")
    return fake.sent


# --- Slack Socket Mode ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_slack_message_over_socket_is_acked_stored_once_and_answered(answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake)
    gauge = metrics.CONNECTORS_CONNECTED.labels("slack")
    before = gauge._value.get()
    with supervisor() as sup:
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the hello")
        assert gauge._value.get() == before + 1
        [opened] = slack_fake.opens
        assert opened.headers["Authorization"] == f"Bearer {SLACK_APP_TOKEN}"  # the app-level token opens it

        first = slack_envelope(event_id="Ev0SOCKET001", text=QUESTION)
        slack_fake.socket.push(first)
        wait_until(lambda: slack_fake.acks(first["envelope_id"]), WAIT, "the ack")
        [sent] = answered(slack_fake)
        assert sent.headers["Authorization"] == f"Bearer {SLACK_BOT_TOKEN}"  # replies with the bot token
        assert sent.json()["channel"] == "D0PNCRP9N"
        assert "9:00–18:00" in sent.json()["text"]

        # Slack's retry of the same event (new envelope id, same event_id) is acked, not answered again.
        retry = slack_envelope(event_id="Ev0SOCKET001", text=QUESTION, retry_attempt=1)
        slack_fake.socket.push(retry)
        wait_until(lambda: slack_fake.acks(retry["envelope_id"]), WAIT, "the retry's ack")
        stored = InboundMessage.objects.filter(channel=channel)
        assert stored.count() == 1
        assert stored.get().text == QUESTION
        wait_until(lambda: stored.get().status == "answered", WAIT, "the message to be handled")
    assert len(slack_fake.sent) == 1
    wait_until(lambda: slack_fake.socket.open_connections == 0, WAIT, "the socket closed on shutdown")
    assert gauge._value.get() == before


@pytest.mark.django_db(transaction=True)
def test_slack_rating_click_over_socket_mode_is_recorded_like_the_webhooks(answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake)
    with supervisor() as sup:
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the hello")
        slack_fake.socket.push(slack_envelope(event_id="Ev0RATE00001", text=QUESTION))
        [sent] = answered(slack_fake)
        # Delivered, not only stored: the click names the message by the ts Slack gave it.
        reply = wait_until(
            lambda: (r := InboundMessage.objects.get(channel=channel).reply) and r.platform_message_id and r,
            WAIT,
            "the delivered answer",
        )

        # The answer's signed feedback token, as its rating buttons carry it (here read from its link).
        token = re.search(r"/feedback/([^/|>]+)/", sent.json()["text"]).group(1)
        click = slack_rating_envelope(sent.json(), ts=reply.platform_message_id, token=token, thumb="down")
        slack_fake.socket.push(click)
        wait_until(lambda: slack_fake.acks(click["envelope_id"]), WAIT, "the click's ack")
        feedback = wait_until(lambda: Feedback.objects.first(), WAIT, "the rating")
        assert (feedback.message_id, feedback.rating, feedback.source) == (reply.pk, 1, "button")
        [update] = wait_until(lambda: slack_fake.updates, WAIT, "the rated message's update")
        assert (update.json()["channel"], update.json()["ts"]) == ("D0PNCRP9N", reply.platform_message_id)

        # Someone else's click is acknowledged (Slack must not retry it) but counts for nothing.
        stranger = slack_rating_envelope(
            sent.json(), ts=reply.platform_message_id, token=token, thumb="up", user="U0STRANGER"
        )
        slack_fake.socket.push(stranger)
        wait_until(lambda: slack_fake.acks(stranger["envelope_id"]), WAIT, "the stranger's ack")
        [note] = wait_until(lambda: slack_fake.http.requests_to("/api/chat.postEphemeral"), WAIT, "the note")
        assert note.json()["user"] == "U0STRANGER"  # told, privately, why it did not count
        assert list(Feedback.objects.values_list("rating", flat=True)) == [1]
    assert InboundMessage.objects.count() == 1  # clicks are never messages
    assert len(slack_fake.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_slack_connection_recovers_after_a_drop_and_a_refresh(answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake)
    reconnects = metrics.CONNECTOR_RECONNECTS.labels("slack")
    before = reconnects._value.get()
    with supervisor() as sup:
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the first connection")
        slack_fake.socket.drop()  # the network fails
        wait_until(
            lambda: slack_fake.socket.connects == 2 and slack_fake.socket.open_connections == 1, WAIT, "reconnect"
        )
        slack_fake.socket.push({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "x"}})
        wait_until(lambda: slack_fake.socket.connects == 3 and slack_fake.socket.open_connections == 1, WAIT, "refresh")
        assert len(slack_fake.opens) == 3  # every connection asks for a fresh URL (tickets are one-off)
        assert len(set(slack_fake.tickets)) == 3

        envelope = slack_envelope(event_id="Ev0AFTERDROP", text=QUESTION)
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "hello on the new connection")
        slack_fake.socket.push(envelope)
        answered(slack_fake)
        # The ack follows the storing and the reply may be faster: wait for it, do not assume it.
        wait_until(lambda: slack_fake.acks(envelope["envelope_id"]), WAIT, "the ack")
    assert reconnects._value.get() - before == 2


@pytest.mark.django_db(transaction=True)
def test_disabled_channel_is_disconnected_and_reenabled_one_reconnects(answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake)
    with supervisor() as sup:
        wait_until(lambda: slack_fake.socket.open_connections == 1, WAIT, "the connection")
        channel.enabled = False
        channel.save()
        wait_until(lambda: slack_fake.socket.open_connections == 0, WAIT, "the disabled channel to disconnect")
        wait_until(lambda: channel.key not in sup.states(), WAIT, "the runner to go")
        # The runner leaves the list first, then finishes stopping: its last act releases the lock.
        wait_until(lambda: asyncio.run(_holder_after_stop(sup, channel.pk)) == "", WAIT, "the lock to be released")

        channel.enabled = True
        channel.save()
        wait_until(lambda: slack_fake.socket.open_connections == 1, WAIT, "the re-enabled channel to connect")

        # Switching back to webhook mode disconnects too.
        channel.mode = Channel.Mode.WEBHOOK
        channel.save()
        wait_until(lambda: slack_fake.socket.open_connections == 0, WAIT, "webhook mode to disconnect")


async def _holder_after_stop(sup: Supervisor, channel_id: int) -> str:
    from apps.channels.connectors.locks import make_locks

    locks = make_locks(holder="probe", ttl=2)
    try:
        return await locks.holder_of(channel_id)
    finally:
        if locks.kind == "redis":
            await locks.close()


@pytest.mark.django_db(transaction=True)
def test_changed_credentials_reconnect_with_the_new_ones(answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake, enabled=True)
    channel.credentials = {"app_token": "xapp-1-wrong", "bot_token": SLACK_BOT_TOKEN}
    channel.save()
    with supervisor() as sup:
        wait_until(lambda: len(slack_fake.opens) >= 2, WAIT, "attempts with the refused token")
        assert slack_fake.socket.connects == 0
        assert sup.states()[channel.key] in ("reconnecting", "connecting")
        channel.credentials = {"app_token": SLACK_APP_TOKEN, "bot_token": SLACK_BOT_TOKEN}
        channel.save()
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the connection with the right token")


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_one_holder_and_takeover_on_clean_stop(answering_bot, slack_fake):
    channel = slack_channel(answering_bot, slack_fake)
    with supervisor(holder="node-b") as second:
        with supervisor(holder="node-a") as first:
            wait_until(lambda: slack_fake.socket.open_connections == 1, WAIT, "one connection")
            wait_until(
                lambda: sorted([first.states().get(channel.key), second.states().get(channel.key)])
                == ["connected", "standby"],
                WAIT,
                "one holder and one standby",
            )
            holder = first if first.states()[channel.key] == "connected" else second
            # Several lock renewals later there is still one connection, made once.
            threading.Event().wait(FAST.lock_ttl * 1.5)
            assert (slack_fake.socket.connects, slack_fake.socket.open_connections) == (1, 1)
        if holder is first:
            wait_until(lambda: second.states().get(channel.key) == "connected", WAIT, "the standby to take over")
        # The fake server forgets the old socket when its handler ends, which may be a moment after
        # the new holder is connected.
        wait_until(lambda: slack_fake.socket.open_connections == 1, WAIT, "one connection after the takeover")
        slack_fake.socket.push(slack_envelope(event_id="Ev0TAKEOVER1", text=QUESTION))
        answered(slack_fake)


@needs_shared_backends
@pytest.mark.django_db(transaction=True)
def test_a_holder_that_lost_its_lock_disconnects_and_stands_by(answering_bot, slack_fake):
    """After a long pause the key may have expired and been taken: the old holder must notice at its
    next renewal and let go, never keep a second connection open, and never delete the new key."""
    import redis

    channel = slack_channel(answering_bot, slack_fake)
    store = redis.Redis.from_url(settings.REDIS_URL)
    key = f"parley:connector:holder:{channel.pk}"
    with supervisor() as sup:
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the connection")
        store.set(key, "elsewhere:4242:0abc", px=60_000)  # what another process's SET NX writes (deleted below)
        wait_until(lambda: slack_fake.socket.open_connections == 0, WAIT, "the old holder to let go")
        wait_until(lambda: sup.states().get(channel.key) == "standby", WAIT, "standby")
        assert store.get(key) == b"elsewhere:4242:0abc"  # the other holder's key is untouched
        store.delete(key)  # that holder goes away cleanly
        wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the channel taken back")
        assert slack_fake.socket.open_connections == 1


# --- DingTalk Stream --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_dingtalk_stream_callback_is_acked_stored_and_answered_through_session_webhook(answering_bot, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeServer() as http, FakeSocketServer() as socket:
        fake = FakeDingTalkStream(
            http,
            socket,
            client_id=DINGTALK_CREDENTIALS["client_id"],
            client_secret=DINGTALK_CREDENTIALS["client_secret"],
        )
        channel = make_channel(
            answering_bot,
            platform="dingtalk",
            key="dingtalk-stream",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials=dict(DINGTALK_CREDENTIALS),
            api_base=http.url,
        )
        with supervisor() as sup:
            wait_until(lambda: socket.open_connections == 1, WAIT, "the stream connection")
            [opened] = fake.opens
            assert opened.json()["subscriptions"] == [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]
            assert socket.paths[0] == f"/connect?ticket={fake.tickets[0]}"

            socket.push(dingtalk_ping_frame("ping-1"))
            [pong] = wait_until(lambda: fake.acks("ping-1"), WAIT, "the ping's answer")
            assert pong["code"] == 200 and json.loads(pong["data"]) == {"opaque": "6d1f0b3c"}

            webhook = f"{http.url}/robot/sendBySession?session=s1"
            frame = dingtalk_callback_frame(msg_id="msgStream001", session_webhook=webhook, message_id="frame-1")
            socket.push(frame)
            [ack] = wait_until(lambda: fake.acks("frame-1"), WAIT, "the callback's ack")
            assert ack["code"] == 200 and ack["message"] == "OK"
            assert ack["headers"] == {"messageId": "frame-1", "contentType": "application/json"}
            [sent] = answered(fake)
            assert sent.query == {"session": ["s1"]}
            assert sent.json()["markdown"]["text"] == ANSWER

            # The frame pushed again (an unacked re-push) is acked but not answered twice.
            again = dict(frame, headers={**frame["headers"], "messageId": "frame-2"})
            socket.push(again)
            wait_until(lambda: fake.acks("frame-2"), WAIT, "the re-push's ack")
            inbound = InboundMessage.objects.get(channel=channel)
            assert (inbound.platform_message_id, inbound.user_id) == ("msgStream001", "manager7140")
            wait_until(lambda: InboundMessage.objects.get(pk=inbound.pk).status == "answered", WAIT, "handled")

            # SYSTEM disconnect: a new connection with a new ticket.
            socket.push({"specVersion": "1.0", "type": "SYSTEM", "headers": {"topic": "disconnect"}, "data": "{}"})
            wait_until(lambda: socket.connects == 2 and socket.open_connections == 1, WAIT, "the new connection")
            assert socket.paths[1] == f"/connect?ticket={fake.tickets[1]}"
            # The server sees the socket open a moment before the client marks itself connected.
            wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "connected again")
        assert len(fake.sent) == 1
    for secret in (DINGTALK_CREDENTIALS["client_secret"], *fake.tickets):
        assert secret not in caplog.text  # not even at DEBUG


@pytest.mark.django_db(transaction=True)
def test_dingtalk_refused_credentials_never_connect_and_back_off(answering_bot):
    with FakeServer() as http, FakeSocketServer() as socket:
        fake = FakeDingTalkStream(http, socket, client_id="other", client_secret="other")
        channel = make_channel(
            answering_bot,
            platform="dingtalk",
            key="dingtalk-stream",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials=dict(DINGTALK_CREDENTIALS),
            api_base=http.url,
        )
        slow = Options(poll_seconds=0.2, lock_ttl=2.0, backoff_base=0.05, backoff_max=1.0)
        with supervisor(slow) as sup:
            wait_until(lambda: len(fake.opens) >= 2, WAIT, "a second attempt")
            threading.Event().wait(1.0)
            # A refusal waits the longest delay (0.5–1 s here), not the shortest: at most ~3 tries.
            assert len(fake.opens) <= 4
            assert socket.connects == 0
            assert sup.states()[channel.key] in ("reconnecting", "connecting")


# --- Feishu long connection -------------------------------------------------------------------------


def test_feishu_frames_use_the_protobuf_wire_format():
    # pbbp2.Frame{SeqID:0, LogID:0, service:1, method:0, headers:[{type: ping}]}, encoded by hand
    # from the protobuf wire format: tag (field << 3 | wire type), varints, length-prefixed bytes.
    expected = bytes.fromhex("08001000180120002a0c0a0474797065120470696e67")
    assert ping_frame(1) == expected
    assert decode_frame(expected) == Frame(service=1, method=0, headers=[("type", "ping")])
    data = Frame(seq_id=7, log_id=2**40, service=33554678, method=1, headers=[("sum", "1")], payload="事件".encode())
    assert decode_frame(encode_frame(data)) == data
    with pytest.raises(ValueError):
        decode_frame(b"\x2a\x10\x0a")  # a length running past the end


def feishu_message(event_id: str, text: str = QUESTION) -> dict:
    payload = sample_json("feishu", "im.message.receive_v1.p2p_text.json")
    payload["header"]["event_id"] = event_id
    payload["header"]["token"] = ""  # no Verification Token over the long connection
    payload["event"]["message"]["content"] = json.dumps({"text": text})
    payload["event"]["message"]["message_id"] = f"om_{event_id}"
    return payload


@pytest.mark.django_db(transaction=True)
def test_feishu_long_connection_event_is_acked_stored_once_and_answered(answering_bot, caplog):
    caplog.set_level(logging.DEBUG)
    creds = {"app_id": FEISHU_CREDENTIALS["app_id"], "app_secret": FEISHU_CREDENTIALS["app_secret"]}
    with FakeServer() as http, FakeFeishuLongConnection(http, **creds) as fake:
        install_feishu(http)
        channel = make_channel(
            answering_bot,
            platform="feishu",
            key="feishu-ws",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials=creds,
            api_base=http.url,
        )
        sends = lambda: http.requests_to("/open-apis/im/v1/messages")  # noqa: E731
        with supervisor() as sup:
            wait_until(lambda: sup.states().get(channel.key) == "connected", WAIT, "the connection")
            assert fake.socket.paths[0].endswith(f"access_key={fake.tickets[0]}&service_id=33554678")
            wait_until(lambda: len(fake.pings()) >= 2, WAIT, "pings every PingInterval")
            assert {f.service for f in fake.pings()} == {33554678}

            # A large event arrives in two parts; it is acknowledged once whole.
            for part in fake.event_frames(feishu_message("ev-ws-1"), message_id="m-1", parts=2):
                fake.socket.push(part)
            [ack] = wait_until(lambda: fake.acks("m-1"), WAIT, "the ack")
            assert json.loads(ack.payload) == {"code": 200} and ack.header("biz_rt").isdigit()
            wait_until(lambda: len(sends()) == 1, 20, "the reply")
            assert ANSWER.split("**")[0].strip() in sends()[0].body.decode()

            # Feishu re-pushes the same event (another frame id): acknowledged, not answered twice.
            [again] = fake.event_frames(feishu_message("ev-ws-1"), message_id="m-2")
            fake.socket.push(again)
            wait_until(lambda: fake.acks("m-2"), WAIT, "the second ack")
            inbound = InboundMessage.objects.get(channel=channel)
            assert (inbound.platform_message_id, inbound.text) == ("ev-ws-1", QUESTION)
            wait_until(lambda: InboundMessage.objects.get(pk=inbound.pk).status == "answered", WAIT, "handled")

            fake.socket.drop()
            wait_until(lambda: fake.socket.connects == 2 and fake.socket.open_connections == 1, WAIT, "reconnect")
            assert len(set(fake.tickets)) == 2
        assert len(sends()) == 1
    for secret in (creds["app_secret"], *fake.tickets):
        assert secret not in caplog.text  # not even at DEBUG


# --- Telegram long polling --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_telegram_polling_removes_the_webhook_answers_updates_once_and_confirms_by_offset(answering_bot, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeServer() as http:
        fake = FakeTelegramPolling(http, token=TELEGRAM_TOKEN, webhook_url="https://old.example.com/hook")
        channel = make_channel(
            answering_bot,
            platform="telegram",
            key="telegram-poll",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials={"bot_token": TELEGRAM_TOKEN},
            api_base=http.url,
        )
        fake.queue(telegram_update(731934120, text=QUESTION))
        edit = telegram_update(731934121, text="an edit")
        edit["edited_message"] = edit.pop("message")  # acknowledged (confirmed) but not a question
        fake.queue(edit)
        with supervisor() as sup:
            [sent] = answered(fake)
            assert len(fake.deletes) == 1 and fake.webhook_url == ""  # getUpdates needs the webhook gone
            assert sent.json()["chat_id"] == 412503776
            assert "<b>9:00–18:00</b>" in sent.json()["text"]
            wait_until(lambda: 731934122 in fake.offsets, WAIT, "the updates to be confirmed")
            assert sup.states()[channel.key] == "connected"

            fake.queue(telegram_update(731934122, text=QUESTION))
            answered(fake, 2)
            wait_until(lambda: 731934123 in fake.offsets, WAIT, "the third update to be confirmed")
        stored = InboundMessage.objects.filter(channel=channel).order_by("platform_message_id")
        assert [m.platform_message_id for m in stored] == ["731934120", "731934122"]
        assert len(fake.sent) == 2
        # Offsets only ever move forward: a confirmed update is never fetched again.
        numbers = [o for o in fake.offsets if o is not None]
        assert numbers == sorted(numbers)
    assert "removed it" in caplog.text  # the webhook's removal is said
    assert TELEGRAM_TOKEN not in caplog.text  # the token is in every URL: none is logged, even at DEBUG


@pytest.mark.django_db(transaction=True)
def test_telegram_redelivered_update_is_not_answered_twice(answering_bot):
    with FakeServer() as http:
        fake = FakeTelegramPolling(http, token=TELEGRAM_TOKEN)
        make_channel(
            answering_bot,
            platform="telegram",
            key="telegram-poll",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials={"bot_token": TELEGRAM_TOKEN},
            api_base=http.url,
        )
        with supervisor():
            fake.queue(telegram_update(5001, text=QUESTION))
            answered(fake)
            wait_until(lambda: 5002 in fake.offsets, WAIT, "the confirmation")
            fake.queue(telegram_update(5001, text=QUESTION))  # Telegram sends it again all the same
            fake.queue(telegram_update(5002, text=QUESTION))
            answered(fake, 2)
            wait_until(lambda: 5003 in fake.offsets, WAIT, "the second confirmation")
        assert len(fake.sent) == 2
        assert InboundMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_long_connection_channel_without_a_connector_is_reported_not_silently_ignored(answering_bot, caplog):
    # Saved around the admin's check (e.g. by a config import).
    make_channel(answering_bot, platform="qq", key="qq-lc", mode=Channel.Mode.LONG_CONNECTION, credentials={})
    with supervisor() as sup:
        wait_until(lambda: "qq-lc" in caplog.text, WAIT, "the warning")
        assert sup.states() == {}
    [record] = [r for r in caplog.records if "qq-lc" in r.getMessage()]
    assert record.levelname == "WARNING" and record.state == "refused"
    assert "set the channel to webhook mode" in record.getMessage()


# --- Admin validation -------------------------------------------------------------------------------


def _form(bot, **data):
    base = {"bot": bot.pk, "key": "lc-channel", "name": "", "enabled": "on", "api_base": "", "allowed_origins": ""}
    return ChannelForm(data={**base, **data})


@pytest.mark.django_db
@pytest.mark.parametrize("platform", ["qq", "wecom", "web"])
def test_admin_refuses_long_connection_where_parley_has_none(bot, platform):
    form = _form(bot, platform=platform, mode="long_connection", credentials="{}")
    assert not form.is_valid()
    [error] = form.errors["mode"]
    assert "use the webhook mode" in error or "served by Parley" in error
    assert all(p in error for p in ("dingtalk", "feishu", "slack", "telegram"))  # where it is available


@pytest.mark.django_db
def test_admin_long_connection_asks_for_the_connection_credentials(bot):
    # Slack Socket Mode needs the app-level token, not the signing secret.
    form = _form(bot, platform="slack", mode="long_connection", credentials=json.dumps({"bot_token": "xoxb-1"}))
    assert not form.is_valid()
    assert form.errors["credentials"] == ["Missing credential(s) for slack in long-connection mode: app_token."]
    assert "mode" not in form.errors

    ok = _form(
        bot,
        platform="slack",
        mode="long_connection",
        credentials=json.dumps({"bot_token": "xoxb-1", "app_token": "xapp-1"}),
    )
    assert ok.is_valid(), ok.errors
    # Telegram polling needs no secret_token (that is the webhook's header).
    polling = _form(bot, platform="telegram", mode="long_connection", credentials=json.dumps({"bot_token": "1:a"}))
    assert polling.is_valid(), polling.errors
    # Webhook mode still asks for the webhook's secrets.
    hook = _form(bot, platform="slack", mode="webhook", credentials=json.dumps({"bot_token": "xoxb-1"}))
    assert not hook.is_valid()
    assert "signing_secret" in hook.errors["credentials"][0] or "app_token" in hook.errors["credentials"][0]


@pytest.mark.django_db
def test_admin_page_of_a_long_connection_channel_asks_for_no_webhook_url(client, bot):
    from django.urls import reverse

    from tests.factories import make_user

    channel = make_channel(bot, platform="slack", key="lc-page", mode="long_connection")
    client.force_login(make_user("root", superuser=True))
    page = client.get(reverse("admin:im_channels_channel_change", args=[channel.pk])).content.decode()
    assert "None needed: Parley connects out" in page and channel.webhook_url not in page
    Channel.objects.filter(pk=channel.pk).update(mode="webhook")
    page = client.get(reverse("admin:im_channels_channel_change", args=[channel.pk])).content.decode()
    assert channel.webhook_url in page


LONG_CONNECTION_CONFIG = """
tenants:
  - slug: lc-co
    name: LC Co
    bots:
      - slug: helper
        name: Helper
        channels:
          - key: lc-slack
            platform: slack
            mode: long_connection
            credentials: {app_token: xapp-1-abc, bot_token: xoxb-1-abc}
          - key: lc-qq
            platform: qq
            mode: long_connection
            credentials: {app_id: "102", secret: s}
"""


@pytest.mark.django_db
def test_config_apply_checks_long_connection_channels_like_the_admin(tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "parley.yaml"
    path.write_text(LONG_CONNECTION_CONFIG)
    with pytest.raises(CommandError) as refused:
        call_command("apply", "-f", str(path))
    message = str(refused.value)
    assert "channels[1].mode: QQ's WebSocket gateway is retired" in message
    assert "channels[0]" not in message  # Slack with its app-level token is fine: no signing secret asked
    assert not Channel.objects.exists()  # all or nothing

    path.write_text(LONG_CONNECTION_CONFIG.split("          - key: lc-qq")[0])
    call_command("apply", "-f", str(path))
    channel = Channel.objects.get(key="lc-slack")
    assert (channel.mode, channel.credentials["app_token"]) == ("long_connection", "xapp-1-abc")


# --- Several processes: one holder, takeover after the holder dies, clean SIGTERM ------------------


def _test_database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + settings.DATABASES["default"]["NAME"]))


def _start(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PARLEY_TASKS_MODE": "inprocess",
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "DEBUG",  # secrets must stay out of even the most talkative logs
        "DB_CONN_MAX_AGE": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_connectors",
            "--poll-seconds",
            "0.3",
            "--lock-ttl",
            "3",
            "--backoff-base",
            "0.05",
            "--backoff-max",
            "0.5",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return proc, log


def _holder_pid(channel_id: int) -> int:
    import redis

    value = redis.Redis.from_url(settings.REDIS_URL).get(f"parley:connector:holder:{channel_id}")
    return int(value.decode().split(":")[1]) if value else 0


@needs_shared_backends
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_one_holder_takeover_after_kill_and_clean_sigterm(answering_bot, slack_fake, tmp_path):
    channel = slack_channel(answering_bot, slack_fake)
    first, first_log = _start(tmp_path, "a")
    second, second_log = _start(tmp_path, "b")
    procs = {first.pid: first, second.pid: second}
    try:
        wait_until(lambda: slack_fake.socket.open_connections == 1, 60, "one process to connect")
        holder_pid = wait_until(lambda: _holder_pid(channel.pk), WAIT, "the lock's holder")
        threading.Event().wait(3.5)  # more than a TTL: the standby never connects while the holder renews
        assert (slack_fake.socket.connects, slack_fake.socket.open_connections) == (1, 1)

        slack_fake.socket.push(slack_envelope(event_id="Ev0PROC00001", text=QUESTION))
        answered(slack_fake, 1, timeout=30)

        holder = procs.pop(holder_pid)
        holder.kill()  # no goodbye: the lock must expire
        holder.wait(10)
        survivor = next(iter(procs.values()))
        wait_until(lambda: slack_fake.socket.connects == 2 and slack_fake.socket.open_connections == 1, 30, "takeover")
        assert _holder_pid(channel.pk) == survivor.pid
        slack_fake.socket.push(slack_envelope(event_id="Ev0PROC00002", text=QUESTION))
        answered(slack_fake, 2, timeout=30)

        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(20) == 0  # a clean exit
        wait_until(lambda: slack_fake.socket.open_connections == 0, WAIT, "the socket closed on SIGTERM")
        assert _holder_pid(channel.pk) == 0  # released at once, not left to expire
        assert InboundMessage.objects.filter(channel=channel).count() == 2
        assert len(slack_fake.sent) == 2
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    logs = first_log.read_text() + second_log.read_text()
    for secret in (SLACK_APP_TOKEN, SLACK_BOT_TOKEN, *slack_fake.tickets):
        assert secret not in logs
    states = {json.loads(line).get("state") for line in logs.splitlines() if line.startswith("{")}
    assert {"standby", "connected", "stopped"} <= states
    assert re.search(r'"channel": "acme-slack-socket"', logs)
