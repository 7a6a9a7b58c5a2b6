"""Friction (verified): a conversation's language flipped to the latest message's. A short English
"ok" in a Chinese conversation leaves it Chinese, and the bot keeps answering in Chinese."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from apps.conversations.models import Conversation
from tests.factories import make_bot, make_channel, make_tenant
from tests.platforms.web.conftest import _fresh_layer, communicator, frames_until, issue  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_short_english_word_does_not_flip_a_chinese_conversation():
    bot = make_bot(make_tenant("acme"), name="Helpdesk")
    channel = make_channel(bot, platform="web", key="acme-web")
    token = issue(channel).token

    async def scenario():
        comm = communicator(token=token, origin="https://parley.example.org")
        assert (await comm.connect())[0]
        await comm.receive_json_from()  # history
        said = []
        for n, text in enumerate(["你好，请问你们的营业时间是几点到几点？", "ok", "/help"]):
            await comm.send_json_to({"type": "message", "id": f"c-{n}", "text": text})
            said.append((await frames_until(comm, "message"))[-1]["text"])
        await comm.disconnect()
        return said

    answers = async_to_sync(scenario)()
    assert Conversation.objects.get().language == "zh"
    assert "命令" in answers[-1]  # the help menu, in Chinese
