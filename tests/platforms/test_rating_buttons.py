"""Thumbs up / down on Feishu cards, Slack messages and Telegram inline keyboards: the buttons an
answer carries, and clicks that come back signed (and, on Feishu, encrypted) exactly as the
platforms send them, through the real webhook path (and Telegram's long polling), landing in the
same Feedback table as the feedback page and the web widget, and counted in parley_ratings_total."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from apps.channels.models import Channel
from apps.channels.platforms.base import OutboundReply, Target
from apps.channels.platforms.feishu.adapter import FeishuAdapter
from apps.channels.platforms.slack.adapter import SlackAdapter
from apps.channels.platforms.telegram.adapter import TelegramAdapter
from apps.channels.platforms.telegram.rating import callback_data, click_from_data
from apps.conversations.feedback_links import feedback_token, feedback_token_load
from apps.conversations.models import Conversation, Feedback, InboundMessage, Message
from apps.conversations.review import record_feedback
from apps.core import metrics
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant
from tests.fakes.connectors import wait_until
from tests.fakes.platforms import as_meta, sample, sample_json
from tests.fakes.server import FakeServer
from tests.platforms.conftest import FEISHU_CREDENTIALS, QUESTION
from tests.platforms.feishu.fake import feishu_event, install_feishu
from tests.platforms.feishu.test_feishu import BOT_OPEN_ID, message
from tests.platforms.feishu.test_feishu import post as feishu_post
from tests.platforms.slack.fake import install_slack, slack_interaction, slack_signed
from tests.platforms.slack.test_slack import BOT_TOKEN, SECRET, make_slack_channel
from tests.platforms.telegram.fake import (
    TELEGRAM_ASKER,
    FakeTelegramBot,
    FakeTelegramPolling,
    telegram_callback,
    telegram_update,
)
from tests.platforms.telegram.test_telegram import BOT_TOKEN as TG_TOKEN
from tests.platforms.telegram.test_telegram import SECRET as TG_SECRET

ASKER = "ou_84aad35d084aa403a838cf73ee18467"  # the sender in the Feishu p2p sample
FEISHU_CHAT = "oc_5ce6d572455d361153b7xx51da133945"
SLACK_USER, SLACK_DM = "U061F7AUR", "D0PNCRP9N"  # the sender and the DM of the Slack message_im sample
FORM = "application/x-www-form-urlencoded"
TG_CHAT = 412503776  # the private chat of the Telegram private_message sample (same id as its sender)


def wait_for(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    return condition()


def foreign_answer(platform: str) -> Message:
    """An answer of another tenant, given to the same chat and user ids on another channel."""
    bot = make_bot(make_tenant("other-co"), slug="other")
    channel = make_channel(bot, platform=platform, key=f"other-{platform}", credentials={"x": "y"})
    chat, user = {
        "feishu": (FEISHU_CHAT, ASKER),
        "slack": (SLACK_DM, SLACK_USER),
        "telegram": (str(TG_CHAT), str(TELEGRAM_ASKER["id"])),
    }[platform]
    conv = Conversation.objects.create(tenant=bot.tenant, bot=bot, channel=channel, chat_id=chat, user_id=user)
    return Message.objects.create(conversation=conv, role=Message.Role.ASSISTANT, text="Their answer", source="model")


# --- Feishu ---------------------------------------------------------------------------------------


def sent_cards(fake_server) -> list[dict]:
    return [json.loads(r.json()["content"]) for r in fake_server.requests_to("/open-apis/im/v1/messages")]


def card_buttons(card: dict) -> list[dict]:
    actions = [e for e in card["elements"] if e.get("tag") == "action"]
    return actions[0]["actions"] if actions else []


def card_click(token: str, thumb: str = "up", *, open_id: str = ASKER, chat_id: str = FEISHU_CHAT, event_id="ev-c1"):
    payload = sample_json("feishu", "card.action.trigger.json")
    payload["header"]["event_id"] = event_id
    event = payload["event"]
    event["action"]["value"] = {"parley_rating": thumb, "token": token}
    if open_id != ASKER:
        event["operator"] = {"open_id": open_id, "tenant_key": event["operator"]["tenant_key"]}
    event["context"]["open_chat_id"] = chat_id
    return payload


def click_feishu(client, payload, **kw):
    return feishu_post(client, payload, **kw)


@pytest.fixture
def feishu_answer(client, feishu_channel, fake_server):
    """A Feishu user asked; the answer card went out through the fake messages API."""
    install_feishu(fake_server, bot_open_id=BOT_OPEN_ID)
    assert feishu_post(client, message("ev-1")).status_code == 200
    return InboundMessage.objects.get(platform_message_id="ev-1").reply


@pytest.mark.django_db(transaction=True)
def test_feishu_answer_card_carries_two_buttons_with_the_answers_signed_token(feishu_answer, fake_server):
    (card,) = sent_cards(fake_server)
    assert card["elements"][0]["tag"] == "markdown"
    buttons = card_buttons(card)
    assert [b["text"]["content"] for b in buttons] == ["👍 Helpful", "👎 Not helpful"]
    assert [b["value"]["parley_rating"] for b in buttons] == ["up", "down"]
    for button in buttons:
        assert feedback_token_load(button["value"]["token"]) == (feishu_answer.pk, feishu_answer.conversation.tenant_id)


@pytest.mark.django_db(transaction=True)
def test_feishu_click_lands_one_feedback_row_and_the_other_button_changes_it(client, feishu_answer, fake_server):
    token = card_buttons(sent_cards(fake_server)[0])[0]["value"]["token"]
    inbound_before = InboundMessage.objects.count()

    up = click_feishu(client, card_click(token, "up", event_id="ev-c1"))
    assert up.status_code == 200
    assert up.json()["toast"]["type"] == "success"
    assert up.json()["toast"]["i18n"]["zh_cn"] == "谢谢！您觉得这个回答有帮助。"
    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating, feedback.source) == (feishu_answer.pk, 5, "button")
    # The card is redrawn for the clicker: the same answer, the chosen button highlighted, both kept.
    original = sent_cards(fake_server)[0]
    redrawn = up.json()["card"]
    assert redrawn["type"] == "raw" and redrawn["data"]["elements"][0] == original["elements"][0]
    assert [b["type"] for b in card_buttons(redrawn["data"])] == ["primary", "default"]
    assert [b["value"] for b in card_buttons(redrawn["data"])] == [b["value"] for b in card_buttons(original)]

    down = click_feishu(client, card_click(token, "down", event_id="ev-c2"))
    assert down.status_code == 200
    assert down.json()["toast"]["content"] == "Thanks! You found this answer not helpful."
    assert [b["type"] for b in card_buttons(down.json()["card"]["data"])] == ["default", "primary"]
    assert list(Feedback.objects.values_list("message_id", "rating")) == [(feishu_answer.pk, 1)]
    # A click is never a message: nothing stored, nothing answered, nothing sent.
    assert InboundMessage.objects.count() == inbound_before
    assert len(sent_cards(fake_server)) == 1


@pytest.mark.django_db(transaction=True)
def test_feishu_click_keeps_a_comment_written_on_the_feedback_page(client, feishu_answer, fake_server):
    Feedback.objects.create(message=feishu_answer, rating=3, comment="Missing the weekend hours", source="page")
    token = card_buttons(sent_cards(fake_server)[0])[1]["value"]["token"]
    assert click_feishu(client, card_click(token, "down")).status_code == 200
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.comment, feedback.source) == (1, "Missing the weekend hours", "button")


@pytest.mark.django_db(transaction=True)
def test_feishu_forged_clicks_are_refused_and_store_nothing(client, feishu_answer, fake_server):
    token = card_buttons(sent_cards(fake_server)[0])[0]["value"]["token"]

    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    response = click_feishu(client, card_click(tampered))
    assert response.status_code == 400 and response.json()["toast"]["type"] == "error"

    other = feedback_token(foreign_answer("feishu"))
    assert click_feishu(client, card_click(other)).status_code == 400

    body, headers = feishu_event(card_click(token), encrypt_key=FEISHU_CREDENTIALS["encrypt_key"])
    headers["X-Lark-Signature"] = "0" * 64
    assert client.post("/webhooks/feishu/feishu-main/", data=body, **as_meta(headers)).status_code == 401

    wrong_token = card_click(token)
    wrong_token["header"]["token"] = "not-the-verification-token"
    assert click_feishu(client, wrong_token).status_code == 403

    bad_value = card_click(token)
    bad_value["event"]["action"]["value"] = {"parley_rating": "up"}
    assert click_feishu(client, bad_value).status_code == 400

    sideways = card_click(token, "sideways")
    assert click_feishu(client, sideways).status_code == 400
    assert not Feedback.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_feishu_only_the_asker_may_rate_and_is_told_so(client, feishu_answer, fake_server):
    token = card_buttons(sent_cards(fake_server)[0])[0]["value"]["token"]
    response = click_feishu(client, card_click(token, open_id="ou_someone_else_in_the_group"))
    assert response.status_code == 200  # Feishu shows the toast only on a 200
    assert "card" not in response.json()
    assert response.json()["toast"] == {
        "type": "error",
        "content": "Only the person who asked can rate this answer.",
        "i18n": {"zh_cn": "只有提问的人可以评价这个回答。", "en_us": "Only the person who asked can rate this answer."},
    }
    forwarded = click_feishu(client, card_click(token, chat_id="oc_another_chat"))
    assert forwarded.json()["toast"]["type"] == "error"
    assert not Feedback.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_feishu_click_on_an_expired_answer_is_refused_with_a_toast(client, feishu_answer, fake_server, settings):
    token = card_buttons(sent_cards(fake_server)[0])[0]["value"]["token"]
    settings.FEEDBACK_LINK_MAX_AGE = -1  # every token is past its lifetime
    response = click_feishu(client, card_click(token))
    assert response.status_code == 200
    assert response.json()["toast"]["content"] == "This answer can no longer be rated."
    assert not Feedback.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_feishu_clicks_share_the_feedback_pages_limit_per_answer(client, feishu_answer, fake_server):
    token = card_buttons(sent_cards(fake_server)[0])[0]["value"]["token"]
    for n in range(10):
        thumb = "up" if n % 2 == 0 else "down"
        assert click_feishu(client, card_click(token, thumb, event_id=f"ev-{n}")).json()["toast"]["type"] == "success"
    limited = click_feishu(client, card_click(token, "up", event_id="ev-10"))
    assert limited.status_code == 200 and limited.json()["toast"]["type"] == "warning"
    assert Feedback.objects.get().rating == 1  # the 10th click (down) stands


@pytest.mark.django_db(transaction=True)
def test_feishu_command_replies_carry_no_buttons(client, feishu_channel, fake_server):
    install_feishu(fake_server, bot_open_id=BOT_OPEN_ID)
    assert feishu_post(client, message("ev-h", text="/help")).status_code == 200
    (card,) = sent_cards(fake_server)
    assert card_buttons(card) == []


@pytest.mark.django_db(transaction=True)
def test_feishu_buttons_follow_the_bots_feedback_switch(client, feishu_channel, fake_server):
    install_feishu(fake_server, bot_open_id=BOT_OPEN_ID)
    bot = feishu_channel.bot
    bot.feedback_links = False
    bot.save()
    assert feishu_post(client, message("ev-1")).status_code == 200
    assert card_buttons(sent_cards(fake_server)[0]) == []


def test_feishu_chinese_answers_get_chinese_labels_and_a_channel_can_turn_buttons_off(feishu_channel, fake_server):
    install_feishu(fake_server)
    reply = OutboundReply(
        markdown="我们的营业时间是周一至周五 **9:00–18:00**。", feedback_url="https://p.example/feedback/t0k/"
    )
    FeishuAdapter().send(feishu_channel, Target(chat_id=FEISHU_CHAT), reply)
    buttons = card_buttons(sent_cards(fake_server)[0])
    assert [b["text"]["content"] for b in buttons] == ["👍 有帮助", "👎 没帮助"]
    assert buttons[0]["value"] == {"parley_rating": "up", "token": "t0k"}

    feishu_channel.credentials = {**feishu_channel.credentials, "rating_buttons": "off"}
    FeishuAdapter().send(feishu_channel, Target(chat_id=FEISHU_CHAT), reply)
    assert card_buttons(sent_cards(fake_server)[1]) == []

    # Feishu's long connection records clicks too, so its answers carry the buttons as well.
    feishu_channel.credentials = {k: v for k, v in feishu_channel.credentials.items() if k != "rating_buttons"}
    feishu_channel.mode = "long_connection"
    FeishuAdapter().send(feishu_channel, Target(chat_id=FEISHU_CHAT), reply)
    assert len(card_buttons(sent_cards(fake_server)[2])) == 2


# --- Slack ----------------------------------------------------------------------------------------


@pytest.fixture
def slack_channel(db, fake_server):
    install_slack(fake_server)
    return make_slack_channel(fake_server.url)


def slack_post(client, body: bytes, *, content_type: str = FORM, timestamp: int | None = None, secret: str = SECRET):
    headers = slack_signed(body, secret, timestamp=timestamp)
    return client.post("/webhooks/slack/acme-slack/", data=body, content_type=content_type, headers=headers)


def posted(fake_server) -> list[dict]:
    return [r.json() for r in fake_server.requests_to("/api/chat.postMessage")]


def rating_block(message: dict) -> dict | None:
    return next((b for b in message.get("blocks") or [] if b.get("type") == "actions"), None)


def slack_click(sent: dict, thumb: str = "up", *, user: str = SLACK_USER, value: str | None = None) -> bytes:
    """The interactivity request Slack sends when ``user`` clicks a rating button of ``sent``."""
    payload = json.loads(sample("slack", "block_actions.json"))
    block = rating_block(sent)
    token = value if value is not None else block["elements"][0]["value"]
    payload["user"]["id"] = user
    payload["container"].update(channel_id=sent["channel"], message_ts=sent["ts"])
    payload["channel"]["id"] = sent["channel"]
    payload["message"].update(ts=sent["ts"], text=sent["text"], blocks=sent["blocks"])
    payload["actions"][0].update(action_id=f"parley_rate_{thumb}", value=token)
    return slack_interaction(payload)


@pytest.fixture
def slack_answer(client, slack_channel, fake_server):
    """A Slack user asked in a DM; the answer went out through the fake chat.postMessage. Returns
    (the answer Message, the message as Slack stores it: what was posted plus its ts)."""
    body = sample("slack", "message_im.json").encode()
    assert slack_post(client, body, content_type="application/json").status_code == 200
    (sent,) = posted(fake_server)
    reply = InboundMessage.objects.get().reply
    sent["ts"] = reply.platform_message_id
    return reply, sent


@pytest.mark.django_db(transaction=True)
def test_slack_answer_ends_with_an_actions_block_and_keeps_its_reply_metadata(slack_answer):
    reply, sent = slack_answer
    section, actions = sent["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": sent["text"]}}
    assert "*9 to 17*" in sent["text"] and "Rate this answer" in sent["text"]
    assert [e["action_id"] for e in actions["elements"]] == ["parley_rate_up", "parley_rate_down"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["👍 Helpful", "👎 Not helpful"]
    for element in actions["elements"]:
        assert feedback_token_load(element["value"]) == (reply.pk, reply.conversation.tenant_id)
    assert sent["metadata"] == {
        "event_type": "parley_reply",
        "event_payload": {"reply": f"parley-{reply.pk}", "part": 0},
    }


@pytest.mark.django_db(transaction=True)
def test_slack_click_lands_one_row_updates_the_message_and_can_be_changed(client, slack_answer, fake_server):
    reply, sent = slack_answer
    inbound_before = InboundMessage.objects.count()

    response = slack_post(client, slack_click(sent, "up"))
    assert response.status_code == 200
    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating, feedback.source) == (reply.pk, 5, "button")

    (update,) = wait_for(lambda: fake_server.requests_to("/api/chat.update"))
    assert update.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    updated = update.json()
    assert (updated["channel"], updated["ts"]) == (SLACK_DM, sent["ts"])
    assert updated["blocks"][0] == sent["blocks"][0]  # the answer itself is untouched
    up, down = rating_block(updated)["elements"]
    assert up.get("style") == "primary" and "style" not in down  # still both there: changeable
    assert updated["blocks"][-1]["elements"][0]["text"] == "Thanks! You found this answer helpful."

    sent_now = {**sent, "blocks": updated["blocks"]}
    assert slack_post(client, slack_click(sent_now, "down")).status_code == 200
    assert list(Feedback.objects.values_list("message_id", "rating")) == [(reply.pk, 1)]
    second = wait_for(lambda: fake_server.requests_to("/api/chat.update")[1:])[0].json()
    assert [b["type"] for b in second["blocks"]] == ["section", "actions", "context"]  # one thanks line
    assert InboundMessage.objects.count() == inbound_before
    assert len(posted(fake_server)) == 1


@pytest.mark.django_db(transaction=True)
def test_slack_forged_stale_or_foreign_clicks_are_refused_and_store_nothing(client, slack_answer, fake_server):
    _, sent = slack_answer
    body = slack_click(sent)

    assert slack_post(client, body, secret="not-the-signing-secret").status_code == 401
    assert slack_post(client, body, timestamp=int(time.time()) - 301).status_code == 401  # outside the window
    headers = slack_signed(body, SECRET)
    altered = body.replace(b"parley_rate_up", b"parley_rate_down")
    resp = client.post("/webhooks/slack/acme-slack/", data=altered, content_type=FORM, headers=headers)
    assert resp.status_code == 401  # changed after signing

    token = rating_block(sent)["elements"][0]["value"]
    assert slack_post(client, slack_click(sent, value=token[:-2] + "zz")).status_code == 400
    assert slack_post(client, slack_click(sent, value=feedback_token(foreign_answer("slack")))).status_code == 400
    assert slack_post(client, b"payload=%7Bnot+json").status_code == 400
    assert not Feedback.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_slack_someone_else_is_told_privately_and_nothing_is_stored(client, slack_answer, fake_server):
    _, sent = slack_answer
    assert slack_post(client, slack_click(sent, user="U0SOMEONE")).status_code == 200
    (note,) = wait_for(lambda: fake_server.requests_to("/api/chat.postEphemeral"))
    assert note.json() == {
        "channel": SLACK_DM,
        "user": "U0SOMEONE",
        "text": "Only the person who asked can rate this answer.",
    }
    assert not Feedback.objects.exists()
    assert not fake_server.requests_to("/api/chat.update")


@pytest.mark.django_db(transaction=True)
def test_slack_other_interactions_are_acknowledged_without_action(client, slack_channel):
    payload = json.loads(sample("slack", "block_actions.json"))
    payload["actions"][0]["action_id"] = "someone_elses_button"
    assert slack_post(client, slack_interaction(payload)).status_code == 200
    payload["type"] = "view_submission"
    assert slack_post(client, slack_interaction(payload)).status_code == 200
    assert not Feedback.objects.exists() and not InboundMessage.objects.exists()


def test_slack_chinese_labels_and_the_channel_switch(slack_channel, fake_server):
    reply = OutboundReply(markdown="我们周一至周五营业。", feedback_url="https://p.example/feedback/t0k/")
    SlackAdapter().send(slack_channel, Target(chat_id=SLACK_DM), reply)
    elements = rating_block(posted(fake_server)[0])["elements"]
    assert [e["text"]["text"] for e in elements] == ["👍 有帮助", "👎 没帮助"]
    assert {e["value"] for e in elements} == {"t0k"}

    SlackAdapter().send(slack_channel, Target(chat_id=SLACK_DM), OutboundReply(markdown="No rating here"))
    slack_channel.credentials = {**slack_channel.credentials, "rating_buttons": "off"}
    SlackAdapter().send(slack_channel, Target(chat_id=SLACK_DM), reply)
    assert "blocks" not in posted(fake_server)[1] and "blocks" not in posted(fake_server)[2]
    assert "Rate this answer" in posted(fake_server)[2]["text"]  # the link stays


def test_slack_long_answer_puts_the_buttons_under_its_last_part(slack_channel, fake_server):
    text = "\n\n".join(f"Paragraph {n}: " + "word " * 120 for n in range(12))
    SlackAdapter().send(
        slack_channel, Target(chat_id=SLACK_DM), OutboundReply(markdown=text, feedback_url="https://p/feedback/t/")
    )
    messages = posted(fake_server)
    assert len(messages) >= 3
    assert all("blocks" not in m for m in messages[:-1])
    section, actions = messages[-1]["blocks"]
    assert len(section["text"]["text"]) <= 3000 and actions["type"] == "actions"


# --- the ASGI webhook lane ------------------------------------------------------------------------


def test_a_click_through_the_webhook_lane_lands_and_is_acknowledged(live, fake_server):
    install_slack(fake_server)
    channel = make_slack_channel(fake_server.url)
    conv = Conversation.objects.create(
        tenant=channel.bot.tenant, bot=channel.bot, channel=channel, chat_id=SLACK_DM, user_id=SLACK_USER
    )
    answer = Message.objects.create(conversation=conv, role=Message.Role.ASSISTANT, text="Open 9 to 17", source="model")
    sent = {
        "channel": SLACK_DM,
        "ts": "1731405999.000001",
        "text": "Open 9 to 17",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Open 9 to 17"}},
            {"type": "actions", "block_id": "parley_rating", "elements": [{"value": feedback_token(answer)}]},
        ],
    }
    body = slack_click(sent, "down")
    headers = {"Content-Type": FORM, **slack_signed(body, SECRET)}
    response = httpx.post(f"{live.url}/webhooks/slack/acme-slack/", content=body, headers=headers, timeout=30)
    assert response.status_code == 200 and response.headers["X-Request-ID"]
    assert list(Feedback.objects.values_list("message_id", "rating", "source")) == [(answer.pk, 1, "button")]
    stale = {"Content-Type": FORM, **slack_signed(body, SECRET, timestamp=int(time.time()) - 600)}
    assert (
        httpx.post(f"{live.url}/webhooks/slack/acme-slack/", content=body, headers=stale, timeout=30).status_code == 401
    )
    assert wait_for(lambda: fake_server.requests_to("/api/chat.update"))


# --- signed clicks with random contents: never a 500, never a row ---------------------------------

FUZZ = fuzz_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


@FUZZ
@given(value=json_values, operator=json_values, context=json_values)
def test_feishu_signed_clicks_with_random_values_never_500(client, feishu_channel, value, operator, context):
    payload = sample_json("feishu", "card.action.trigger.json")
    payload["event"].update(operator=operator, context=context)
    payload["event"]["action"]["value"] = value
    assert click_feishu(client, payload).status_code < 500
    assert not Feedback.objects.exists() and not InboundMessage.objects.exists()


@FUZZ
@given(action=json_values, user=json_values, container=json_values)
def test_slack_signed_clicks_with_random_values_never_500(client, slack_channel, action, user, container):
    payload = json.loads(sample("slack", "block_actions.json"))
    payload.update(user=user, container=container, actions=[action, {"action_id": "parley_rate_up", "value": action}])
    assert slack_post(client, slack_interaction(payload)).status_code < 500
    assert not Feedback.objects.exists() and not InboundMessage.objects.exists()


# --- Telegram -------------------------------------------------------------------------------------


def tg_post(client, update: dict, secret: str | None = TG_SECRET):
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    body = json.dumps(update, ensure_ascii=False).encode()
    return client.post("/webhooks/telegram/acme-tg/", data=body, content_type="application/json", headers=headers)


def keyboard(message: dict) -> list[dict]:
    return (message.get("reply_markup") or {"inline_keyboard": [[]]})["inline_keyboard"][0]


def ratings(source: str, rating: str) -> float:
    return metrics.RATINGS.labels(source, rating)._value.get()


@pytest.fixture
def fake_tg(fake_server):
    return FakeTelegramBot(fake_server, token=TG_TOKEN, first_message_id=2001)


@pytest.fixture
def tg_channel(db, fake_server):
    bot = make_bot(make_tenant("acme"))
    make_knowledge(bot, "What are your opening hours?", "We are open **9 to 17**, Monday to Friday.")
    creds = {"bot_token": TG_TOKEN, "secret_token": TG_SECRET, "bot_username": "acme_helpdesk_bot"}
    return make_channel(bot, platform="telegram", key="acme-tg", credentials=creds, api_base=fake_server.url)


@pytest.fixture
def tg_answer(client, tg_channel, fake_tg):
    """A Telegram user asked in a private chat; the answer went out through the fake sendMessage.
    Returns (the answer Message, the message as Telegram holds it)."""
    assert tg_post(client, sample_json("telegram", "private_message.json")).status_code == 200
    assert len(fake_tg.sent) == 1
    reply = InboundMessage.objects.get().reply
    return reply, fake_tg.message(TG_CHAT, int(reply.platform_message_id))


@pytest.mark.django_db(transaction=True)
def test_telegram_answer_carries_an_inline_keyboard_with_the_answers_signed_token(tg_answer):
    reply, message = tg_answer
    up, down = keyboard(message)
    assert [up["text"], down["text"]] == ["👍 Helpful", "👎 Not helpful"]
    assert "Rate this answer" in message["text"]  # the link to the page (for a comment) stays
    for button, thumb in ((up, "up"), (down, "down")):
        assert len(button["callback_data"].encode()) <= 64
        token, clicked = click_from_data(button["callback_data"])
        assert clicked == thumb
        assert feedback_token_load(token) == (reply.pk, reply.conversation.tenant_id)


@pytest.mark.django_db(transaction=True)
def test_telegram_click_is_answered_with_a_toast_lands_one_row_and_redraws_the_keyboard(client, tg_answer, fake_tg):
    reply, message = tg_answer
    inbound_before, up_before = InboundMessage.objects.count(), ratings("telegram", "up")

    click = telegram_callback(message, 0, update_id=731934200)
    response = tg_post(client, click)
    assert response.status_code == 200
    # The webhook's answer is the answerCallbackQuery call itself: Telegram shows the toast.
    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": click["callback_query"]["id"],
        "text": "Thanks! You found this answer helpful.",
    }
    feedback = Feedback.objects.get()
    assert (feedback.message_id, feedback.rating, feedback.source) == (reply.pk, 5, "button")
    assert ratings("telegram", "up") == up_before + 1

    (edit,) = wait_until(lambda: fake_tg.edits, 5, "the keyboard redraw")
    assert (edit.json()["chat_id"], edit.json()["message_id"]) == (TG_CHAT, message["message_id"])
    up, down = keyboard(fake_tg.message(TG_CHAT, message["message_id"]))
    assert (up["text"], up["style"]) == ("👍 Helpful ✓", "primary") and "style" not in down
    assert [up["callback_data"], down["callback_data"]] == [b["callback_data"] for b in keyboard(message)]

    # The other thumb changes the rating; the same thumb again changes nothing and is not an error.
    redrawn = fake_tg.message(TG_CHAT, message["message_id"])
    changed = tg_post(client, telegram_callback(redrawn, 1, update_id=731934201, language="zh-hans"))
    assert changed.json()["text"] == "谢谢！您觉得这个回答没有帮助。"
    assert list(Feedback.objects.values_list("message_id", "rating")) == [(reply.pk, 1)]
    wait_until(lambda: len(fake_tg.edits) == 2, 5, "the second redraw")
    assert keyboard(fake_tg.message(TG_CHAT, message["message_id"]))[1]["text"] == "👎 Not helpful ✓"
    again = fake_tg.message(TG_CHAT, message["message_id"])
    assert tg_post(client, telegram_callback(again, 1, update_id=731934202)).status_code == 200
    wait_until(lambda: len(fake_tg.edits) == 3, 5, "the unchanged redraw to be refused")
    assert Feedback.objects.get().rating == 1
    # A click is never a message: nothing stored, nothing answered, nothing sent.
    assert InboundMessage.objects.count() == inbound_before
    assert len(fake_tg.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_telegram_only_the_asker_may_rate_and_is_told_in_their_language(client, tg_answer, fake_tg):
    _, message = tg_answer
    stranger = {"id": 99887766, "is_bot": False, "first_name": "Wang", "language_code": "zh-hans"}
    response = tg_post(client, telegram_callback(message, 0, update_id=731934210, user=stranger))
    assert response.status_code == 200
    assert response.json()["text"] == "只有提问的人可以评价这个回答。"
    english = {**stranger, "language_code": "en"}
    assert tg_post(client, telegram_callback(message, 0, update_id=731934211, user=english)).json()["text"] == (
        "Only the person who asked can rate this answer."
    )
    # The asker's own button, pressed from another chat (a forwarded copy), counts for nothing either.
    elsewhere = {**message, "chat": {"id": -1001873456210, "type": "supergroup", "title": "ACME"}}
    assert "Only the person" in tg_post(client, telegram_callback(elsewhere, 0, update_id=731934212)).json()["text"]
    assert not Feedback.objects.exists() and not fake_tg.edits


@pytest.mark.django_db(transaction=True)
def test_telegram_click_on_an_expired_answer_is_told_so(client, tg_answer, settings):
    _, message = tg_answer
    settings.FEEDBACK_LINK_MAX_AGE = -1
    response = tg_post(client, telegram_callback(message, 0, update_id=731934220))
    assert response.status_code == 200 and response.json()["text"] == "This answer can no longer be rated."
    assert not Feedback.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_telegram_forged_or_malformed_callback_data_gets_a_clear_answer_and_stores_nothing(client, tg_answer):
    _, message = tg_answer
    data = keyboard(message)[0]["callback_data"]
    foreign = callback_data(feedback_token(foreign_answer("telegram")), "up")
    bad = [
        data[:-3] + ("aaa" if not data.endswith("aaa") else "bbb"),  # altered signature
        data.replace("ru", "rd", 1)[:-1] + ("Q" if data[-1] != "Q" else "R"),  # other thumb, altered signature
        foreign,  # another tenant's answer, properly signed
        data + "x" * (65 - len(data)),  # longer than any button can carry
        "👍" * 16,  # 64 bytes of something else
        "",
        None,  # a game button: no data at all
        12345,
    ]
    for n, forged in enumerate(bad):
        response = tg_post(client, telegram_callback(message, 0, update_id=731934230 + n, data=forged))
        assert response.status_code == 200, forged  # answered, so Telegram neither retries nor spins
        assert response.json()["method"] == "answerCallbackQuery"
        assert response.json()["text"] == "This rating button does not work.", forged

    click = telegram_callback(message, 0, update_id=731934240)
    assert tg_post(client, click, secret="not-the-secret").status_code == 401
    assert tg_post(client, click, secret=None).status_code == 401
    no_id = telegram_callback(message, 0, update_id=731934241)
    del no_id["callback_query"]["id"]
    assert tg_post(client, no_id).status_code == 400
    assert tg_post(client, {"update_id": 731934242, "callback_query": "ru1.1"}).status_code == 400
    assert not Feedback.objects.exists()
    assert InboundMessage.objects.count() == 1  # the question only


@pytest.mark.django_db(transaction=True)
def test_telegram_clicks_share_the_feedback_pages_limit_per_answer(client, tg_answer):
    _, message = tg_answer
    for n in range(10):
        response = tg_post(client, telegram_callback(message, n % 2, update_id=731934300 + n))
        assert response.json()["text"].startswith("Thanks!")
    limited = tg_post(client, telegram_callback(message, 0, update_id=731934310))
    assert limited.status_code == 200
    assert limited.json()["text"] == "Too many ratings. Please try again in a few minutes."
    assert Feedback.objects.get().rating == 1  # the 10th click (down) stands


def test_telegram_chinese_labels_last_part_only_and_the_channel_switch(tg_channel, fake_tg):
    target = Target(chat_id=str(TG_CHAT))
    token = feedback_token(foreign_answer("telegram"))
    reply = OutboundReply(markdown="我们周一至周五营业。", feedback_url=f"https://p.example/feedback/{token}/")
    TelegramAdapter().send(tg_channel, target, reply)
    assert [b["text"] for b in keyboard(fake_tg.sent[0].json())] == ["👍 有帮助", "👎 没帮助"]

    long = "\n\n".join(f"Paragraph {n}: " + "word " * 200 for n in range(8))
    TelegramAdapter().send(tg_channel, target, OutboundReply(markdown=long, feedback_url=reply.feedback_url))
    parts = [r.json() for r in fake_tg.sent[1:]]
    assert len(parts) >= 2
    assert all("reply_markup" not in p for p in parts[:-1]) and len(keyboard(parts[-1])) == 2

    # No token, a token that is not a feedback token, or the switch off: no keyboard, the link stays.
    TelegramAdapter().send(tg_channel, target, OutboundReply(markdown="No rating here"))
    TelegramAdapter().send(tg_channel, target, OutboundReply(markdown="Hi", feedback_url="https://p/feedback/t0k/"))
    tg_channel.credentials = {**tg_channel.credentials, "rating_buttons": "off"}
    TelegramAdapter().send(tg_channel, target, reply)
    last = [r.json() for r in fake_tg.sent[-3:]]
    assert all("reply_markup" not in m for m in last)
    assert "Rate this answer" in last[-1]["text"]


@pytest.mark.django_db(transaction=True)
def test_telegram_polling_answers_carry_buttons_whose_clicks_are_recorded_answered_and_redrawn(answering_bot, settings):
    from tests.platforms.test_connectors import supervisor

    settings.TASKS_MODE = "inprocess"  # the pipeline off the connection's thread, as on one node
    with FakeServer() as http:
        fake = FakeTelegramPolling(http, token=TG_TOKEN)
        channel = make_channel(
            answering_bot,
            platform="telegram",
            key="telegram-poll",
            mode=Channel.Mode.LONG_CONNECTION,
            credentials={"bot_token": TG_TOKEN},
            api_base=http.url,
        )
        fake.queue(telegram_update(731934400, text=QUESTION))
        with supervisor():
            wait_until(lambda: len(fake.sent) == 1, 20, "the answer")
            (message,) = fake.bot.messages.values()  # as Telegram holds it, keyboard included
            assert [b["text"] for b in keyboard(message)] == ["👍 Helpful", "👎 Not helpful"]

            fake.queue(telegram_callback(message, 1, update_id=731934401))
            stranger = {"id": 99887766, "is_bot": False, "first_name": "Wang"}
            fake.queue(telegram_callback(message, 0, update_id=731934402, user=stranger))
            toasts = wait_until(lambda: len(fake.bot.answers) >= 2 and fake.bot.answers, 15, "both clicks answered")
            assert [t.json()["text"] for t in toasts] == [
                "Thanks! You found this answer not helpful.",
                "Only the person who asked can rate this answer.",
            ]
            (edit,) = wait_until(lambda: fake.bot.edits, 10, "the keyboard redraw")
            assert keyboard(edit.json())[1]["style"] == "primary"
            wait_until(lambda: 731934403 in fake.offsets, 10, "both clicks confirmed")
        polls = http.requests_to(f"/bot{TG_TOKEN}/getUpdates")
        assert polls[0].json()["allowed_updates"] == ["message", "callback_query"]
        reply = InboundMessage.objects.get(channel=channel).reply
        assert list(Feedback.objects.values_list("message_id", "rating", "source")) == [(reply.pk, 1, "button")]
        assert InboundMessage.objects.count() == 1  # clicks are never messages


@pytest.mark.django_db
def test_ratings_are_counted_by_source_and_rating_where_they_are_stored(tg_channel):
    web = make_channel(tg_channel.bot, platform="web", key="acme-web", credentials={})
    conv = Conversation.objects.create(tenant=web.bot.tenant, bot=web.bot, channel=web, chat_id="v1", user_id="v1")
    answers = [Message.objects.create(conversation=conv, role=Message.Role.ASSISTANT, text=f"A{n}") for n in range(4)]
    keys = [("webchat", "up"), ("feedback_page", "down"), ("feedback_page", "neutral")]
    before = {key: ratings(*key) for key in keys}
    record_feedback(message=answers[0], rating=5, source="button")
    record_feedback(message=answers[1], rating=2, source="page")
    record_feedback(message=answers[2], rating=3, source="page")
    record_feedback(message=answers[2], rating=3, source="page")  # a changed (here: repeated) rating counts again
    assert ratings("webchat", "up") == before[("webchat", "up")] + 1
    assert ratings("feedback_page", "down") == before[("feedback_page", "down")] + 1
    assert ratings("feedback_page", "neutral") == before[("feedback_page", "neutral")] + 2


@FUZZ
@given(query=json_values, data=json_values | st.text(max_size=70), sender=json_values, message=json_values)
def test_telegram_authentic_callback_queries_with_random_values_never_500(
    client, tg_channel, query, data, sender, message
):
    update = {"update_id": 731934500, "callback_query": query}
    if isinstance(query, dict):
        query.update({"id": "4204611973380061", "from": sender, "message": message, "data": data})
    assert tg_post(client, update).status_code < 500
    assert not Feedback.objects.exists() and not InboundMessage.objects.exists()
