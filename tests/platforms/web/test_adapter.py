"""The "web" platform adapter: group names, and frames published to the channel layer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.channels.platforms.base import OutboundReply, PlatformError, Target
from apps.channels.platforms.registry import get_adapter
from apps.channels.platforms.web import adapter as web

CHAT = "0123456789abcdef0123456789abcdef"


class _Channel:
    pk = 7


def _listen():
    """A channel-layer consumer of the conversation's group; returns (layer, channel name)."""
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(web.group_name(7, CHAT), name)
    return layer, name


def _receive(layer, name):
    return async_to_sync(layer.receive)(name)["frame"]


def test_registry_has_the_web_adapter():
    assert isinstance(get_adapter("web"), web.WebAdapter)


@pytest.mark.parametrize("chat_id", ["", "abc", "../" + CHAT, CHAT.upper(), CHAT + "0"])
def test_only_issued_chat_ids_name_groups(chat_id):
    with pytest.raises(ValueError):
        web.group_name(1, chat_id)
    with pytest.raises(PlatformError) as err:
        get_adapter("web").send(_Channel(), Target(chat_id=chat_id), OutboundReply(markdown="x"))
    assert err.value.permanent


def test_send_publishes_the_final_answer():
    layer, name = _listen()
    target = Target(chat_id=CHAT, user_id="v", reply_context={"reply_to": "c-1"})
    reply = OutboundReply(markdown="**Hi**", feedback_url="https://x/feedback/t/", idempotency_key="parley-5")
    sent = get_adapter("web").send(_Channel(), target, reply)
    assert sent.platform_message_id == "parley-5"
    assert _receive(layer, name) == {
        "type": "message",
        "id": "parley-5",
        "text": "**Hi**",
        "feedback_url": "https://x/feedback/t/",
        "reply_to": "c-1",
    }


def test_token_sink_coalesces_fast_tokens(monkeypatch):
    layer, name = _listen()
    sink = get_adapter("web").token_sink(_Channel(), Target(chat_id=CHAT), reply_ref="inbound-1")
    monkeypatch.setattr(web, "TOKEN_FLUSH_INTERVAL", 3600)  # nothing is due by time during this test
    for piece in ["Hel", "lo", " wor", "ld"]:
        sink(piece)
    sink.flush()
    first, rest = _receive(layer, name), _receive(layer, name)
    assert first == {"type": "token", "reply_ref": "inbound-1", "reply_to": "", "text": "Hel"}  # the first at once
    assert rest["text"] == "lo world"
