"""A model's answer streamed into Slack and Feishu (Telegram: telegram/test_streaming.py): one
message that grows by updates within the platform's rate limit and ends as the finished answer with
its rating buttons, exactly once; with the channel's streaming off, one finished message."""

from __future__ import annotations

import json
import time

import pytest

from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_model, make_tenant
from tests.fakes.llm import FakeOpenAI
from tests.fakes.platforms import as_meta, sample_json
from tests.platforms.conftest import FEISHU_CREDENTIALS
from tests.platforms.feishu.fake import FakeFeishuMessages, feishu_event
from tests.platforms.slack.fake import FakeSlackWorkspace, slack_signed

#: 24 words, one piece each: streamed over about 2.4 s at 0.1 s a piece.
ANSWER = (
    "Our support desk is open from nine to five on weekdays, and on Saturdays from ten to two; "
    "outside those hours please leave a message and we answer it the next morning."
)
SLACK_SECRET = "b7c1e0d2f3a4958677a8b9c0d1e2f3a4"


@pytest.fixture
def llm():
    with FakeOpenAI() as fake:
        fake.set(text=ANSWER, first_token_delay=0.05, token_delay=0.1)
        yield fake


def _bot(llm):
    tenant = make_tenant("acme")
    bot = make_bot(tenant, model=make_model(tenant, endpoint=llm.url, timeout_s=10))
    make_knowledge(bot, "What are your opening hours?", "Nine to five, **Monday to Friday**.")
    return bot


class Slack:
    """A Slack app in a direct message: ``ask`` posts a signed ``message.im`` event."""

    def __init__(self, fake_server, llm) -> None:
        self.platform = FakeSlackWorkspace(fake_server)
        creds = {"signing_secret": SLACK_SECRET, "bot_token": "xoxb-1111-2222-testtoken"}
        self.channel = make_channel(
            _bot(llm), platform="slack", key="acme-slack", credentials=creds, api_base=fake_server.url
        )

    def ask(self, client, text: str) -> None:
        event = sample_json("slack", "message_im.json")
        event["event_id"] = f"Ev{time.monotonic_ns()}"
        event["event"]["text"] = text
        body = json.dumps(event).encode()
        response = client.post(
            "/webhooks/slack/acme-slack/",
            data=body,
            content_type="application/json",
            headers=slack_signed(body, SLACK_SECRET),
        )
        assert response.status_code == 200

    def finals(self) -> int:
        """How many posts or updates carried the rating buttons (the finished answer)."""
        calls = self.platform.posts + self.platform.updates
        return sum(any(b.get("type") == "actions" for b in r.json().get("blocks") or []) for r in calls)

    def seen(self) -> list[dict]:
        """What the user sees: each message's current text, its versions and its buttons."""
        return [
            {
                "text": m["text"],
                "versions": m["versions"],
                "buttons": [
                    e["text"]["text"] for b in m.get("blocks", []) if b["type"] == "actions" for e in b["elements"]
                ],
            }
            for m in self.platform.conversation("D0PNCRP9N")
        ]


class Feishu:
    """A Feishu app in a one-to-one chat: ``ask`` posts an encrypted ``im.message.receive_v1``."""

    def __init__(self, fake_server, llm) -> None:
        self.platform = FakeFeishuMessages(fake_server)
        self.channel = make_channel(
            _bot(llm),
            platform="feishu",
            key="feishu-main",
            credentials=dict(FEISHU_CREDENTIALS),
            api_base=fake_server.url,
        )

    def ask(self, client, text: str) -> None:
        payload = sample_json("feishu", "im.message.receive_v1.p2p_text.json")
        payload["header"]["event_id"] = f"ev-{time.monotonic_ns()}"
        payload["event"]["message"]["content"] = json.dumps({"text": text})
        payload["event"]["message"]["message_id"] = f"om_{time.monotonic_ns()}"
        body, headers = feishu_event(payload, encrypt_key=FEISHU_CREDENTIALS["encrypt_key"])
        response = client.post("/webhooks/feishu/feishu-main/", data=body, **as_meta(headers))
        assert response.status_code == 200

    def finals(self) -> int:
        calls = self.platform.sends + self.platform.patches
        return sum(any(e.get("tag") == "action" for e in json.loads(r.json()["content"])["elements"]) for r in calls)

    def seen(self) -> list[dict]:
        return [
            {
                "text": m["versions"][-1],
                "versions": m["versions"],
                "buttons": [
                    a["text"]["content"]
                    for e in m["card"]["elements"]
                    if e.get("tag") == "action"
                    for a in e["actions"]
                ],
            }
            for m in self.platform.chat()
        ]


@pytest.fixture(params=[Slack, Feishu], ids=["slack", "feishu"])
def im(request, db, fake_server, llm):
    return request.param(fake_server, llm)


@pytest.mark.django_db(transaction=True)
def test_a_streamed_answer_grows_in_one_message_and_ends_as_the_answer_with_its_buttons(client, im, llm):
    im.ask(client, "When can I reach you?")

    assert InboundMessage.objects.get().status == InboundMessage.Status.ANSWERED
    seen = im.seen()
    assert len(seen) == 1, "the user sees one message, not a partial one and a final one"
    message = seen[0]
    assert message["text"].startswith(ANSWER)
    assert message["buttons"] == ["👍 Helpful", "👎 Not helpful"]
    first, partial, final = message["versions"][0], message["versions"][1:-1], message["versions"][-1]
    assert ANSWER.startswith(first.strip()) and len(first) < len(ANSWER)  # the first words, at once
    assert partial, "the answer grew by updates while the model wrote it"
    assert all(ANSWER.startswith(v.strip()) for v in partial)
    interval = 1.0 if im.channel.platform == "slack" else 0.5
    assert len(partial) <= 2.6 / interval + 1  # ~2.4 s of writing, no faster than the interval
    assert final == message["text"]
    assert im.finals() == 1, "the finished answer (with its buttons) was written once"
    assert im.platform.refused == 0, "no update was refused by the platform's rate limit"


@pytest.mark.django_db(transaction=True)
def test_streaming_off_sends_one_finished_message(client, im, llm):
    im.channel.streaming = False
    im.channel.save()

    im.ask(client, "When can I reach you?")

    seen = im.seen()
    assert len(seen) == 1 and len(seen[0]["versions"]) == 1
    assert seen[0]["text"].startswith(ANSWER) and seen[0]["buttons"]


@pytest.mark.django_db(transaction=True)
def test_an_instant_answer_is_one_message_without_updates(client, im, llm):
    im.ask(client, "What are your opening hours?")

    seen = im.seen()
    assert len(seen) == 1 and len(seen[0]["versions"]) == 1
    assert "Nine to five" in seen[0]["text"] and llm.calls == 0
