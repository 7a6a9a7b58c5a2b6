"""Telegram Bot API adapter: real update samples with the webhook secret header, and the whole path
(webhook → accept → task → pipeline → sendMessage) against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.telegram.adapter import TelegramAdapter
from apps.channels.platforms.telegram.formatting import utf16_len
from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant
from tests.platforms.strategies import json_values
from tests.platforms.telegram.fake import FakeTelegramBot

SAMPLES = Path(__file__).resolve().parents[3] / "apps/channels/platforms/telegram/samples"

BOT_TOKEN = "7512345678:AAH-test_token_0123456789abcdefghij"
SECRET = "parley-Secret_Token-0123456789"
QUESTION = "What are your opening hours?"
ANSWER = "We are open **9 to 17** <Mon–Fri> & on holidays by appointment. See [hours](https://example.com/h?a=1&b=2)."
ANSWER_HTML = (
    "We are open <b>9 to 17</b> &lt;Mon–Fri&gt; &amp; on holidays by appointment. "
    'See <a href="https://example.com/h?a=1&amp;b=2">hours</a>.'
)
SEND_PATH = f"/bot{BOT_TOKEN}/sendMessage"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def post(client, body: bytes, secret: str | None = SECRET, key: str = "acme-tg"):
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return client.post(f"/webhooks/telegram/{key}/", data=body, content_type="application/json", headers=headers)


@pytest.fixture
def tg_channel(db, fake_server):
    bot = make_bot(make_tenant("acme"))
    make_knowledge(bot, QUESTION, ANSWER)
    make_knowledge(bot, "/help", "Ask me about **opening hours**.")
    creds = {"bot_token": BOT_TOKEN, "secret_token": SECRET, "bot_username": "acme_helpdesk_bot"}
    return make_channel(bot, platform="telegram", key="acme-tg", credentials=creds, api_base=fake_server.url)


@pytest.fixture
def fake_tg(fake_server):
    return FakeTelegramBot(fake_server, token=BOT_TOKEN, first_message_id=2001)


# -- a message in, one answer out -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_private_message_is_answered_in_html(client, tg_channel, fake_tg):
    response = post(client, sample("private_message.json"))
    assert response.status_code == 200
    assert response.content == b""  # a JSON body would be taken for a method call

    assert len(fake_tg.sent) == 1
    payload = fake_tg.sent[0].json()
    assert payload["chat_id"] == 412503776
    assert payload["parse_mode"] == "HTML"
    assert payload["text"].startswith(ANSWER_HTML)
    assert "reply_parameters" not in payload  # no need to quote in a one-to-one chat
    inbound = InboundMessage.objects.get()
    assert inbound.platform_message_id == "731934120"
    assert inbound.user_name == "meilin" and not inbound.is_group
    assert inbound.status == InboundMessage.Status.ANSWERED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["group_mention.json", "group_reply_to_bot.json"])
def test_group_message_addressed_to_the_bot_is_answered_as_a_reply(client, tg_channel, fake_tg, name):
    update = json.loads(sample(name))
    assert post(client, sample(name)).status_code == 200
    assert len(fake_tg.sent) == 1
    payload = fake_tg.sent[0].json()
    assert payload["chat_id"] == -1001873456210
    assert payload["reply_parameters"]["message_id"] == update["message"]["message_id"]
    assert payload["text"].startswith(ANSWER_HTML)
    inbound = InboundMessage.objects.get()
    assert inbound.text == QUESTION and inbound.is_group  # the @-mention is gone


@pytest.mark.django_db(transaction=True)
def test_group_command_naming_the_bot_is_handled_as_the_bare_command(client, tg_channel, fake_tg):
    assert post(client, sample("group_command.json")).status_code == 200
    assert InboundMessage.objects.get().text == "/help"
    assert len(fake_tg.sent) == 1


@pytest.mark.django_db(transaction=True)
def test_redelivered_update_gets_no_second_answer(client, tg_channel, fake_tg):
    for _ in range(2):
        assert post(client, sample("private_message.json")).status_code == 200
    assert len(fake_tg.sent) == 1
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "group_chatter.json",  # a group message not addressed to the bot
        "group_bare_command.json",  # /help without @name: every bot in the group gets it
        "edited_message.json",  # on the named ignore list
        "my_chat_member.json",  # the bot was added to a group
    ],
)
def test_updates_that_must_not_be_answered_are_acknowledged_and_not_stored(client, tg_channel, name):
    assert post(client, sample(name)).status_code == 200
    assert not InboundMessage.objects.exists()


def test_command_for_another_bot_is_not_answered(client, tg_channel):
    update = json.loads(sample("group_command.json"))
    update["message"]["text"] = "/help@other_bot"
    update["message"]["entities"][0]["length"] = len("/help@other_bot")
    assert post(client, json.dumps(update).encode()).status_code == 200
    assert not InboundMessage.objects.exists()


def test_messages_from_bots_are_not_answered(client, tg_channel):
    update = json.loads(sample("private_message.json"))
    update["message"]["from"]["is_bot"] = True
    assert post(client, json.dumps(update).encode()).status_code == 200
    assert not InboundMessage.objects.exists()


def test_mention_after_non_bmp_characters_is_cut_at_the_right_place(client, tg_channel):
    # Entity offsets count UTF-16 units: the emoji is two of them.
    update = json.loads(sample("group_mention.json"))
    update["message"]["text"] = "👋 @acme_helpdesk_bot hours?"
    update["message"]["entities"] = [{"offset": 3, "length": 18, "type": "mention"}]
    assert post(client, json.dumps(update).encode()).status_code == 200
    assert InboundMessage.objects.get().text == "👋 hours?"


def test_characters_the_database_cannot_hold_are_dropped_not_crashed_on(client, tg_channel):
    body = sample("private_message.json").replace(b"What are", b"What\\u0000 are\\udfca")
    assert post(client, body).status_code == 200
    assert InboundMessage.objects.get().text == "What are? your opening hours?"


def test_rating_link_is_appended_as_an_html_link(tg_channel, fake_tg):
    reply = OutboundReply(markdown="Hi", feedback_url="https://parley.example/feedback/t0k/?a=1&b=2")
    TelegramAdapter().send(tg_channel, Target(chat_id="412503776"), reply)
    text = fake_tg.sent[0].json()["text"]
    assert text == 'Hi\n\n<a href="https://parley.example/feedback/t0k/?a=1&amp;b=2">Rate this answer</a>'


def test_send_test_message_reports_the_platform_answer(tg_channel, fake_tg):
    ref = get_adapter("telegram").send_test_message(tg_channel, Target(chat_id="412503776"))
    assert ref.platform_message_id == "2001"
    assert fake_tg.sent[0].json()["text"] == "<b>Parley</b> test message ✅"


def test_set_webhook_registers_url_and_secret_for_messages_and_button_clicks(tg_channel, fake_tg, fake_server):
    TelegramAdapter().set_webhook(tg_channel)
    body = fake_server.requests_to(f"/bot{BOT_TOKEN}/setWebhook")[0].json()
    assert body == {
        "url": tg_channel.webhook_url,
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }


def test_refused_html_falls_back_to_plain_text(tg_channel, fake_server):
    def send(req):
        if req.json().get("parse_mode"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities"}
        return 200, {"ok": True, "result": {"message_id": 7}}

    fake_server.route("POST", SEND_PATH, send)
    ref = TelegramAdapter().send_test_message(tg_channel, Target(chat_id="412503776"))
    assert ref.platform_message_id == "7"
    assert fake_server.requests_to(SEND_PATH)[-1].json()["text"] == "Parley test message ✅"


@pytest.mark.parametrize(
    ("status", "description", "permanent"),
    [
        (403, "Forbidden: bot was blocked by the user", True),
        (400, "Bad Request: chat not found", True),
        (401, "Unauthorized", True),
        (429, "Too Many Requests: retry after 5", False),
        (502, "Bad Gateway", False),
    ],
)
def test_platform_errors_say_whether_a_retry_can_help(tg_channel, fake_server, status, description, permanent):
    fake_server.route(
        "POST", SEND_PATH, lambda req: (status, {"ok": False, "error_code": status, "description": description})
    )
    with pytest.raises(PlatformError) as err:
        TelegramAdapter().send_test_message(tg_channel, Target(chat_id="412503776"))
    assert err.value.permanent is permanent
    assert BOT_TOKEN not in str(err.value)


def test_unreachable_api_is_a_temporary_error_that_does_not_leak_the_token(tg_channel):
    tg_channel.api_base = "http://127.0.0.1:9"
    with pytest.raises(PlatformError) as err:
        TelegramAdapter().send_test_message(tg_channel, Target(chat_id="412503776"))
    assert not err.value.permanent
    assert BOT_TOKEN not in str(err.value)


# -- rendering ---------------------------------------------------------------------------------------------


def test_html_escapes_text_and_converts_the_markdown_tree():
    markdown = (
        "# Title\n\n_it_ ~~gone~~ `a<b>` [x](javascript:alert(1)) <script>alert(1)</script>\n\n"
        "- one\n- two\n\n> quoted\n\n```python\nif a < b:\n```"
    )
    (text,) = TelegramAdapter().render(markdown)
    assert text == (
        "<b>Title</b>\n\n<i>it</i> <s>gone</s> <code>a&lt;b&gt;</code> [x](javascript:alert(1)) "
        "&lt;script&gt;alert(1)&lt;/script&gt;\n\n• one\n• two\n\n<blockquote>quoted</blockquote>\n\n"
        '<pre><code class="language-python">if a &lt; b:</code></pre>'
    )


def test_answers_beyond_4096_characters_are_split_into_valid_messages():
    paragraphs = [f"**Part {i}** " + "emoji 😀 & text " * 60 for i in range(12)]
    code = "\n".join(f"x = {i} < {i + 1}" for i in range(500))
    chunks = TelegramAdapter().render("\n\n".join(paragraphs) + "\n\n```\n" + code + "\n```")
    assert len(chunks) > 2
    assert all(utf16_len(c) <= 4096 for c in chunks)
    for chunk in chunks:  # every message is balanced HTML on its own
        for tag in ("b", "pre"):
            assert chunk.count(f"<{tag}>") == chunk.count(f"</{tag}>")
    joined = "".join(chunks)
    assert "Part 11" in joined and "x = 499 &lt; 500" in joined


def test_one_huge_paragraph_is_split_as_text():
    chunks = TelegramAdapter().render("word&more " * 2000)
    assert len(chunks) >= 5
    assert all(utf16_len(c) <= 4096 for c in chunks)
    assert all("&amp;" in c and "&amp" not in c[-4:] for c in chunks)


# -- rejected requests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET[:-1], SECRET + "x"])
def test_missing_or_wrong_secret_token_is_rejected_and_nothing_stored(client, tg_channel, secret):
    assert post(client, sample("private_message.json"), secret=secret).status_code == 401
    assert not InboundMessage.objects.exists()


def test_channel_without_a_secret_token_refuses_every_update(client, tg_channel):
    tg_channel.credentials = {"bot_token": BOT_TOKEN}
    tg_channel.save()
    assert post(client, sample("private_message.json"), secret="").status_code == 403
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"message": {}}', b'{"update_id": "1"}', b'{"update_id": 5, "message": {"text": "x"}}'],
)
def test_malformed_updates_are_400(client, tg_channel, body):
    assert post(client, body).status_code == 400
    assert not InboundMessage.objects.exists()


def test_oversized_body_is_413(client, tg_channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    update = json.loads(sample("private_message.json"))
    update["message"]["text"] = "x" * 2000
    assert post(client, json.dumps(update).encode()).status_code == 413
    assert not InboundMessage.objects.exists()


def test_unknown_or_disabled_channel_is_404(client, tg_channel):
    assert post(client, sample("private_message.json"), key="nope-tg").status_code == 404
    tg_channel.enabled = False
    tg_channel.save()
    assert post(client, sample("private_message.json")).status_code == 404
    assert not InboundMessage.objects.exists()


# -- authentic requests with random payloads reach the parser: never a 500 ----------------------------

entity = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["mention", "bot_command", "text_mention"]) | json_values,
        "offset": st.integers(-2, 40) | json_values,
        "length": st.integers(-2, 40) | json_values,
    },
    optional={"user": json_values | st.fixed_dictionaries({"id": st.just(7512345678) | json_values})},
)
tg_updates = st.fixed_dictionaries(
    {
        "update_id": st.integers(0, 2**40) | json_values,
        "message": json_values
        | st.fixed_dictionaries(
            {
                "message_id": st.integers(1, 10**6) | json_values,
                "chat": json_values
                | st.fixed_dictionaries(
                    {
                        "id": st.integers() | json_values,
                        "type": st.sampled_from(["private", "supergroup"]) | json_values,
                    }
                ),
            },
            optional={
                "text": st.text(max_size=40) | json_values,
                "caption": json_values,
                "entities": st.lists(entity, max_size=3) | json_values,
                "from": json_values,
                "reply_to_message": json_values,
                "is_topic_message": json_values,
                "message_thread_id": json_values,
            },
        ),
    }
)


@fuzz_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(update=tg_updates)
def test_authentic_random_updates_never_500(client, tg_channel, update):
    assert post(client, json.dumps(update).encode()).status_code < 500


# -- rating buttons: the compact signed callback_data ----------------------------------------------------


def test_callback_data_carries_the_feedback_token_without_loss_within_64_bytes():
    from django.core import signing

    from apps.channels.platforms.telegram.rating import callback_data, click_from_data
    from apps.conversations.feedback_links import SALT, feedback_token_load

    for message_id, tenant_id in [(1, 1), (58, 7), (987_654_321, 4_321), (62**8 - 1, 999)]:
        token = signing.TimestampSigner(salt=SALT).sign(f"{message_id}.{tenant_id}")
        for thumb in ("up", "down"):
            data = callback_data(token, thumb)
            assert 1 <= len(data.encode()) <= 64
            assert click_from_data(data) == (token, thumb)
            assert feedback_token_load(click_from_data(data)[0]) == (message_id, tenant_id)
    # Ids too large to fit leave the buttons off rather than send data Telegram would refuse.
    assert callback_data(signing.TimestampSigner(salt=SALT).sign(f"{10**17}.{10**17}"), "up") == ""
    assert callback_data("t0k", "up") == "" and callback_data(token, "sideways") == ""


@pytest.mark.parametrize(
    "data",
    [None, 7, "", "x" * 65, "ru", "rx1.1:1tAvXs:" + "a" * 43, "ru-1.1:1tAvXs:" + "a" * 43, "ru1.1:1tAvXs", "🙂" * 16],
)
def test_callback_data_no_parley_button_carries_decodes_to_nothing(data):
    from apps.channels.platforms.telegram.rating import click_from_data

    assert click_from_data(data) == ("", "")


def test_the_callback_query_sample_reaches_the_rating_path_and_its_made_up_signature_is_refused(client, tg_channel):
    response = post(client, sample("callback_query.json"))
    assert response.status_code == 200
    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "1771923853418459521",
        "text": "This rating button does not work.",
    }
    assert not InboundMessage.objects.exists()
