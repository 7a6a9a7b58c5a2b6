"""Thumbs up / down on Feishu cards and Slack messages: the buttons an answer carries, and clicks
that come back signed (and, on Feishu, encrypted) exactly as the platforms send them, through the
real webhook path, landing in the same Feedback table as the feedback page and the web widget."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from apps.channels.platforms.base import OutboundReply, Target
from apps.channels.platforms.feishu.adapter import FeishuAdapter
from apps.channels.platforms.slack.adapter import SlackAdapter
from apps.conversations.feedback_links import feedback_token, feedback_token_load
from apps.conversations.models import Conversation, Feedback, InboundMessage, Message
from tests.channels.conftest import FEISHU_CREDENTIALS
from tests.channels.test_feishu import BOT_OPEN_ID, message
from tests.channels.test_feishu import post as feishu_post
from tests.channels.test_slack import BOT_TOKEN, SECRET, make_slack_channel
from tests.factories import make_bot, make_channel, make_tenant
from tests.fakes.platforms import (
    as_meta,
    feishu_event,
    install_feishu,
    install_slack,
    sample,
    sample_json,
    slack_interaction,
    slack_signed,
)

ASKER = "ou_84aad35d084aa403a838cf73ee18467"  # the sender in the Feishu p2p sample
FEISHU_CHAT = "oc_5ce6d572455d361153b7xx51da133945"
SLACK_USER, SLACK_DM = "U061F7AUR", "D0PNCRP9N"  # the sender and the DM of the Slack message_im sample
FORM = "application/x-www-form-urlencoded"


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
    chat, user = (FEISHU_CHAT, ASKER) if platform == "feishu" else (SLACK_DM, SLACK_USER)
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

    # Long-connection channels get none: their clicks would not reach the webhook URL.
    feishu_channel.credentials = {k: v for k, v in feishu_channel.credentials.items() if k != "rating_buttons"}
    feishu_channel.mode = "long_connection"
    FeishuAdapter().send(feishu_channel, Target(chat_id=FEISHU_CHAT), reply)
    assert card_buttons(sent_cards(fake_server)[2]) == []


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


@pytest.fixture
def live(transactional_db, settings):
    from tests.webchat.live import LiveParley

    settings.TASKS_MODE = "celery"
    server = LiveParley().start()
    yield server
    server.stop()


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
