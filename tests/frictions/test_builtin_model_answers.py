"""Friction: after choosing the built-in model in setup, the bot answered "No AI model is
configured…" to everything. The built-in model answers from prepared questions and answers: setup
gives the new bot a few (a greeting, what it can do) in English and Chinese, and a question it has
no answer for is told so plainly, in the visitor's language, without calling the set-up broken."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from apps.channels.models import Channel
from apps.setup.services import setup_token
from tests.platforms.web.conftest import _fresh_layer, communicator, frames_until, issue  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _setup_with_the_builtin_model() -> Channel:
    resp = Client().post(
        "/setup/",
        {
            "setup_token": setup_token(),
            "username": "owner",
            "password1": "a-long-unusual-passphrase-42",
            "password2": "a-long-unusual-passphrase-42",
            "tenant_name": "ACME",
            "tenant_slug": "acme",
            "provider": "builtin",
            "bot_name": "Helpdesk",
            "channel_key": "acme-web",
        },
    )
    assert resp.status_code == 302
    return Channel.objects.get(key="acme-web")


def _answers(channel: Channel, *questions: str) -> list[str]:
    token = issue(channel).token

    async def scenario():
        comm = communicator(token=token, origin="https://parley.example.org")  # the chat page's own origin
        assert (await comm.connect())[0]
        await comm.receive_json_from()  # history
        said = []
        for n, question in enumerate(questions):
            await comm.send_json_to({"type": "message", "id": f"c-{n}", "text": question})
            said.append((await frames_until(comm, "message"))[-1]["text"])
        await comm.disconnect()
        return said

    return async_to_sync(scenario)()


def test_the_builtin_model_chosen_in_setup_answers():
    channel = _setup_with_the_builtin_model()
    hello, what, ni_hao, unknown = _answers(
        channel, "Hello!", "What can you do?", "你好", "What is the warranty on the X200 pump?"
    )
    assert "Helpdesk" in hello and "No AI model" not in hello
    assert "/help" in what or "question" in what.lower()
    assert "Helpdesk" in ni_hao and "你好" in ni_hao
    assert "No AI model is configured" not in unknown
    assert "don't have an answer" in unknown
