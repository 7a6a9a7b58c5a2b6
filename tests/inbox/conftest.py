"""Human handoff fixtures: a Feishu channel on the fake Feishu API (answering from a knowledge
entry, so the bot's answers need no model), agents of its tenant and of another tenant."""

from __future__ import annotations

import json

import pytest

from apps.conversations.models import Conversation, Message
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant, make_user
from tests.fakes.platforms import as_meta, sample_json
from tests.platforms.conftest import ANSWER, FEISHU_CREDENTIALS, QUESTION
from tests.platforms.feishu.fake import FakeFeishuMessages, feishu_event
from tests.platforms.web.conftest import _fresh_layer  # noqa: F401 - a channel layer of its own per test

URL = "/webhooks/feishu/feishu-main/"
KEY = FEISHU_CREDENTIALS["encrypt_key"]
USER_OPEN_ID = "ou_84aad35d084aa403a838cf73ee18467"

__all__ = ["ANSWER", "QUESTION"]


@pytest.fixture(autouse=True)
def _forget_gate_settings():
    from apps.inbox.services import forget_gate_settings

    forget_gate_settings()  # rows rolled back between tests send no signal
    yield
    forget_gate_settings()


@pytest.fixture
def feishu(transactional_db, fake_server):
    """``(bot, channel)``: a bot that answers QUESTION with ANSWER, on a Feishu channel (whose
    fake API also takes the updates of a streamed answer)."""
    FakeFeishuMessages(fake_server)
    tenant = make_tenant("im-co")
    bot = make_bot(tenant, slug="support")
    make_knowledge(bot, QUESTION, ANSWER)
    channel = make_channel(
        bot, platform="feishu", key="feishu-main", credentials=dict(FEISHU_CREDENTIALS), api_base=fake_server.url
    )
    return bot, channel


@pytest.fixture
def agents(feishu):
    tenant = feishu[0].tenant
    other = make_tenant("other-co")
    make_user("root", superuser=True)  # setup is done: the admin is open
    return {
        "ann": make_user("ann", tenant=tenant, role="agent"),
        "bob": make_user("bob", tenant=tenant, role="agent"),
        "owner": make_user("olga", tenant=tenant, role="owner"),
        "reviewer": make_user("rita", tenant=tenant, role="reviewer"),
        "stranger": make_user("sam", tenant=other, role="agent"),
    }


def feishu_message(event_id: str, text: str) -> dict:
    payload = sample_json("feishu", "im.message.receive_v1.p2p_text.json")
    payload["header"]["event_id"] = event_id
    content = json.loads(payload["event"]["message"]["content"])
    content["text"] = text
    payload["event"]["message"]["content"] = json.dumps(content, ensure_ascii=False)
    payload["event"]["message"]["message_id"] = f"om_{event_id}"
    return payload


def user_writes(client, event_id: str, text: str) -> None:
    """The Feishu user sends ``text``: the signed, encrypted event Feishu would POST."""
    body, headers = feishu_event(feishu_message(event_id, text), encrypt_key=KEY)
    resp = client.post(URL, data=body, **as_meta(headers))
    assert resp.status_code == 200, resp.content


def feishu_sends(fake_server) -> list[dict]:
    """What Parley sent to the fake Feishu API: ``{path, text, card, body}`` per message sent or
    updated (a streamed answer: its first part, then each update)."""
    out = []
    for req in fake_server.requests_to("/open-apis/im/v1/messages"):
        if req.method not in ("POST", "PATCH"):
            continue
        body = req.json()
        card = json.loads(body["content"])
        text = "\n".join(e.get("content", "") for e in card.get("elements", []) if e.get("tag") == "markdown")
        out.append({"path": req.path, "text": text, "card": card, "body": body})
    return out


def the_conversation() -> Conversation:
    return Conversation.objects.get(status="active")


def answers() -> list[Message]:
    return list(Message.objects.filter(role="assistant").order_by("pk"))
