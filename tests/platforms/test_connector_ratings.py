"""Rating buttons on channels in long-connection mode: answers carry them where the connector records
the clicks (Feishu's long connection, Slack Socket Mode), and a click pushed over Feishu's socket is
stored as the answer's rating and answered in the frame's ack, as the webhook answers it."""

from __future__ import annotations

import base64
import json

import pytest

from apps.channels.models import Channel
from apps.channels.platforms.base import rating_buttons_enabled
from apps.conversations.models import Feedback, InboundMessage
from tests.factories import make_channel
from tests.fakes.connectors import wait_until
from tests.fakes.server import FakeServer
from tests.platforms.conftest import FEISHU_CREDENTIALS
from tests.platforms.feishu.fake import FakeFeishuLongConnection, install_feishu
from tests.platforms.test_connectors import feishu_message, supervisor
from tests.platforms.test_rating_buttons import card_buttons, card_click

CREDS = {"app_id": FEISHU_CREDENTIALS["app_id"], "app_secret": FEISHU_CREDENTIALS["app_secret"]}


def ack_answer(fake: FakeFeishuLongConnection, frame_id: str) -> dict:
    """The JSON the client put in its ack of frame ``frame_id``, with ``data`` decoded."""
    [ack] = wait_until(lambda: fake.acks(frame_id), 10, f"the ack of {frame_id}")
    answer = json.loads(ack.payload)
    if "data" in answer:
        answer["data"] = json.loads(base64.b64decode(answer["data"]))
    return answer


def push(fake: FakeFeishuLongConnection, payload: dict, frame_id: str, kind: str = "card") -> dict:
    [frame] = fake.event_frames(payload, message_id=frame_id, kind=kind)
    fake.socket.push(frame)
    return ack_answer(fake, frame_id)


@pytest.mark.django_db(transaction=True)
def test_feishu_rating_clicks_over_the_long_connection_are_recorded_and_answered_in_the_ack(answering_bot):
    with FakeServer() as http, FakeFeishuLongConnection(http, **CREDS) as fake:
        install_feishu(http)
        channel = make_channel(
            answering_bot,
            platform="feishu",
            key="feishu-ws-rating",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials=CREDS,
            api_base=http.url,
        )
        sends = lambda: http.requests_to("/open-apis/im/v1/messages")  # noqa: E731
        with supervisor() as sup:
            wait_until(lambda: sup.states().get(channel.key) == "connected", 10, "the connection")
            [question] = fake.event_frames(feishu_message("ev-ws-rate"), message_id="m-1")
            fake.socket.push(question)
            [sent] = wait_until(sends, 20, "the answer card")
            card = json.loads(sent.json()["content"])
            buttons = card_buttons(card)
            assert [b["value"]["parley_rating"] for b in buttons] == ["up", "down"]
            token = buttons[0]["value"]["token"]
            answer = InboundMessage.objects.get(platform_message_id="ev-ws-rate").reply

            # A click as Feishu pushes card callbacks (a "card" frame): stored, toast and redrawn card in the ack.
            up = push(fake, card_click(token, "up", event_id="ev-c1"), "c-1")
            assert up["code"] == 200
            assert up["data"]["toast"]["type"] == "success"
            assert up["data"]["toast"]["i18n"]["zh_cn"] == "谢谢！您觉得这个回答有帮助。"
            assert [b["type"] for b in card_buttons(up["data"]["card"]["data"])] == ["primary", "default"]
            feedback = Feedback.objects.get()
            assert (feedback.message_id, feedback.rating, feedback.source) == (answer.pk, 5, "button")

            # The same callback in an "event" frame is read alike; the other thumb changes the rating.
            down = push(fake, card_click(token, "down", event_id="ev-c2"), "c-2", kind="event")
            assert down["data"]["toast"]["content"] == "Thanks! You found this answer not helpful."
            assert list(Feedback.objects.values_list("message_id", "rating")) == [(answer.pk, 1)]

            # Someone else in the chat is told only the asker may rate; the rating stands.
            other = push(fake, card_click(token, "up", open_id="ou_someone_else", event_id="ev-c3"), "c-3")
            assert other["code"] == 200 and other["data"]["toast"]["type"] == "error"
            assert other["data"]["toast"]["i18n"]["en_us"].startswith("Only the person who asked")
            assert "card" not in other["data"]
            assert Feedback.objects.get().rating == 1

            # A forged token: refused with a toast, nothing stored.
            forged = push(fake, card_click(token[:-4] + "AAAA", "up", event_id="ev-c4"), "c-4")
            assert forged["data"]["toast"]["type"] == "error"
            assert Feedback.objects.get().rating == 1

            # Another card's button, and a rating value without its token: a bare ack, nothing else.
            foreign = card_click(token, event_id="ev-c5")
            foreign["event"]["action"]["value"] = {"action": "approve"}
            assert push(fake, foreign, "c-5") == {"code": 200}
            broken = card_click(token, event_id="ev-c6")
            broken["event"]["action"]["value"] = {"parley_rating": "up"}
            assert push(fake, broken, "c-6") == {"code": 200}
            assert Feedback.objects.get().rating == 1

        # Clicks are never messages: one question stored, one answer sent.
        assert InboundMessage.objects.filter(channel=channel).count() == 1
        assert len(sends()) == 1


@pytest.mark.django_db
def test_buttons_are_offered_in_long_connection_mode_only_where_clicks_come_back(bot):
    def channel(platform: str, mode: str, **credentials) -> Channel:
        return Channel(bot=bot, platform=platform, key=f"{platform}-{mode}", mode=mode, credentials=credentials)

    long = Channel.Mode.LONG_CONNECTION
    assert rating_buttons_enabled(channel("feishu", long))
    assert rating_buttons_enabled(channel("slack", long))
    assert not rating_buttons_enabled(channel("dingtalk", long))  # DingTalk Stream: no rating buttons
    assert not rating_buttons_enabled(channel("feishu", long, rating_buttons="off"))
    assert rating_buttons_enabled(channel("feishu", Channel.Mode.WEBHOOK))
