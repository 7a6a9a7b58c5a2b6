"""A model's answer streamed into Slack, Feishu and DingTalk AI cards (Telegram: telegram/test_streaming.py):
one message that grows by updates within the platform's rate limit and ends as the finished answer
(with its rating buttons where the platform has them), exactly once; with the channel's streaming
off, one finished message."""

from __future__ import annotations

import json
import time

import pytest

from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_model, make_tenant
from tests.fakes.llm import FakeOpenAI
from tests.fakes.platforms import as_meta, sample_json
from tests.platforms.conftest import DINGTALK_CREDENTIALS, FEISHU_CREDENTIALS
from tests.platforms.dingtalk.fake import FakeDingTalkCards, dingtalk_headers
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

    buttons = ["👍 Helpful", "👎 Not helpful"]

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

    buttons = ["👍 Helpful", "👎 Not helpful"]

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


class DingTalk:
    """A DingTalk robot in a one-to-one chat, its channel set up with an AI card template: ``ask``
    posts a signed robot callback (its session webhook on the fake, so finished answers go there)."""

    buttons: list[str] = []  # DingTalk answers carry no rating buttons

    def __init__(self, fake_server, llm) -> None:
        self.platform = FakeDingTalkCards(fake_server)
        self.url = fake_server.url
        creds = {**DINGTALK_CREDENTIALS, "card_template_id": "parley-answer.schema"}
        self.channel = make_channel(
            _bot(llm), platform="dingtalk", key="dingtalk-main", credentials=creds, api_base=fake_server.url
        )

    def ask(self, client, text: str) -> None:
        payload = sample_json("dingtalk", "text_single.json")
        payload["msgId"] = f"msg{time.monotonic_ns()}"
        payload["text"]["content"] = text
        payload["sessionWebhook"] = f"{self.url}/robot/sendBySession?session=bench"
        payload["sessionWebhookExpiredTime"] = int(time.time() * 1000) + 3_600_000
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = dingtalk_headers(DINGTALK_CREDENTIALS["client_secret"])
        response = client.post("/webhooks/dingtalk/dingtalk-main/", data=body, **as_meta(headers))
        assert response.status_code == 200

    def _session_messages(self) -> list[str]:
        return [r.json()["markdown"]["text"] for r in self.platform.server.requests_to("/robot/sendBySession")]

    def finals(self) -> int:
        return sum(bool(r.json().get("isFinalize")) for r in self.platform.streams) + len(self._session_messages())

    def seen(self) -> list[dict]:
        cards = [
            {
                "text": c["params"]["content"],
                "versions": c["versions"],
                "buttons": [],
                "status": c["params"]["flowStatus"],
            }
            for c in self.platform.delivered()
        ]
        return cards + [{"text": t, "versions": [t], "buttons": []} for t in self._session_messages()]


@pytest.fixture(params=[Slack, Feishu, DingTalk], ids=["slack", "feishu", "dingtalk"])
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
    assert message["buttons"] == im.buttons
    first, partial, final = message["versions"][0], message["versions"][1:-1], message["versions"][-1]
    assert ANSWER.startswith(first.strip()) and len(first) < len(ANSWER)  # the first words, at once
    assert partial, "the answer grew by updates while the model wrote it"
    assert all(ANSWER.startswith(v.strip()) for v in partial)
    interval = 1.0 if im.channel.platform == "slack" else 0.5
    if im.channel.platform == "dingtalk":
        assert message["status"] == "3"  # the AI card is finished, not left "writing"
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
    assert seen[0]["text"].startswith(ANSWER) and seen[0]["buttons"] == im.buttons


@pytest.mark.django_db(transaction=True)
def test_an_instant_answer_is_one_message_without_updates(client, im, llm):
    im.ask(client, "What are your opening hours?")

    seen = im.seen()
    assert len(seen) == 1 and len(seen[0]["versions"]) == 1
    assert "Nine to five" in seen[0]["text"] and llm.calls == 0
