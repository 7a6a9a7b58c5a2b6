"""Slack slash commands: Slack never posts a message that starts with "/", so Parley's commands
(/help, /reset, /lang …) and questions typed after a carrier command (/parley …) reach it as
signed form POSTs to the channel's webhook URL — or as ``slash_commands`` envelopes over Socket
Mode — and are answered in the conversation like messages."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlencode

import pytest

from apps.conversations.models import InboundMessage
from tests.fakes.connectors import wait_until
from tests.platforms.conftest import QUESTION as CONNECTOR_QUESTION
from tests.platforms.slack.test_slack import QUESTION, VECTORS, FakeSlack, make_slack_channel, post, signed_headers
from tests.platforms.test_connectors import slack_channel as socket_channel
from tests.platforms.test_connectors import slack_fake, supervisor

#: ``slack_fake`` is a fixture: imported so the Socket Mode test can ask for it by name.
__all__ = ["slack_fake"]

FORM = "application/x-www-form-urlencoded"


def slash(command: str, text: str = "", *, channel_id: str = "D0PNCRP9N", **extra: str) -> bytes:
    """A slash command's form body, with the fields Slack sends (see the official signing example)."""
    fields = {
        "token": "xyzz0WbapA4vBCDEFasx0q6G",
        "team_id": "T1DC2JH3J",
        "team_domain": "acme",
        "channel_id": channel_id,
        "channel_name": "directmessage",
        "user_id": "U2CERLKJA",
        "user_name": "roadrunner",
        "command": command,
        "text": text,
        "response_url": "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN",
        "trigger_id": f"{int(time.time())}.47445629121.{uuid.uuid4().hex}",
        **extra,
    }
    return urlencode(fields).encode()


def send(client, body: bytes):
    return post(client, body, signed_headers(body), content_type=FORM)


@pytest.fixture
def slack_channel(db, fake_server):
    return make_slack_channel(fake_server.url)


@pytest.fixture
def slack(fake_server, slack_channel):
    return FakeSlack(fake_server)


@pytest.mark.django_db(transaction=True)
def test_a_question_after_the_carrier_command_is_answered_in_the_dm(client, slack_channel, slack):
    resp = send(client, slash("/parley", QUESTION))
    assert resp.status_code == 200 and resp.content == b""  # nothing shown for the command itself
    [sent] = slack.sent
    assert sent.json()["channel"] == "D0PNCRP9N" and "*9 to 17*" in sent.json()["text"]
    inbound = InboundMessage.objects.get()
    assert (inbound.text, inbound.user_id, inbound.is_group) == (QUESTION, "U2CERLKJA", False)
    assert inbound.platform_message_id.startswith("slash:")


@pytest.mark.django_db(transaction=True)
def test_parleys_own_commands_registered_as_slash_commands_work(client, slack_channel, slack):
    assert send(client, slash("/help")).status_code == 200
    assert "/reset" in slack.sent[-1].json()["text"]  # the command menu
    assert send(client, slash("/lang", "zh")).status_code == 200
    assert send(client, slash("/parley")).status_code == 200  # the carrier alone asks for /help
    assert [m.text for m in InboundMessage.objects.order_by("id")] == ["/help", "/lang zh", "/help"]
    assert len(slack.sent) == 3


@pytest.mark.django_db(transaction=True)
def test_slacks_official_example_is_taken_as_written_and_answered_in_its_channel(client, slack_channel, slack):
    body = VECTORS["slack.signature.official_doc_vector"]["request"]["body"].encode()
    assert send(client, body).status_code == 200
    inbound = InboundMessage.objects.get()  # a command that is neither the carrier nor Parley's: as typed
    assert (inbound.text, inbound.chat_id, inbound.is_group) == ("/webhook-collect", "G8PSS9T3V", True)
    assert inbound.platform_message_id == "slash:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    [sent] = slack.sent
    assert sent.json()["channel"] == "G8PSS9T3V" and "thread_ts" not in sent.json()


@pytest.mark.django_db(transaction=True)
def test_a_channel_can_name_its_own_carrier_command(client, slack_channel, slack):
    slack_channel.credentials = {**slack_channel.credentials, "slash_command": "/ask"}
    slack_channel.save()
    assert send(client, slash("/ask", QUESTION)).status_code == 200
    assert InboundMessage.objects.get().text == QUESTION


@pytest.mark.django_db
def test_broken_or_unsigned_slash_commands_store_nothing(client, slack_channel):
    no_trigger = urlencode({"command": "/parley", "text": "hi", "user_id": "U1", "channel_id": "D1"}).encode()
    resp = send(client, no_trigger)
    assert resp.status_code == 400 and "slash command without" in resp.json()["error"]
    body = slash("/parley", QUESTION)
    assert post(client, body, signed_headers(body, secret="not-the-secret"), content_type=FORM).status_code == 401
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_slash_commands_over_socket_mode_are_answered_and_acknowledged(answering_bot, slack_fake):
    channel = socket_channel(answering_bot, slack_fake)
    with supervisor() as sup:
        wait_until(lambda: sup.states().get(channel.key) == "connected", 20, "the hello")
        payload = {k: v[0] for k, v in parse_qs(slash("/parley", CONNECTOR_QUESTION).decode()).items()}
        envelope = {"envelope_id": "env-slash-1", "type": "slash_commands", "accepts_response_payload": True}
        slack_fake.socket.push({**envelope, "payload": payload})
        wait_until(lambda: slack_fake.acks("env-slash-1"), 20, "the envelope's ack")
        [sent] = wait_until(lambda: slack_fake.sent, 30, "the answer")
        assert sent.json()["channel"] == "D0PNCRP9N"
        inbound = InboundMessage.objects.get(channel=channel)
        assert inbound.text == CONNECTOR_QUESTION and inbound.platform_message_id.startswith("slash:")
