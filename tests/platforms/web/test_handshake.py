"""Opening the chat: many visitors at once against a real Parley (uvicorn serving ``config.asgi`` on a
thread, real WebSocket clients), and how soon a channel change reaches new sockets (each process
remembers a channel lookup for ``PARLEY_CHANNEL_CACHE_SECONDS``)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from websockets.asyncio.client import connect

from apps.channels.models import Channel
from apps.conversations.models import Conversation, InboundMessage, Message

from .conftest import ORIGIN, communicator, issue
from .live import LiveParley

pytestmark = pytest.mark.django_db(transaction=True)

#: Visitors in the burst; every one opens its socket at the same moment.
BURST = 150
#: The whole burst must be served within this (generous: CI machines are small and shared).
BURST_SECONDS = 30


def _waiting(channel, issued, i: int) -> InboundMessage:
    return InboundMessage(
        channel=channel,
        platform_message_id=f"{issued.visitor.visitor_id}:w{i}",
        chat_id=issued.visitor.chat_id,
        user_id=issued.visitor.visitor_id,
        text=f"still waiting {i}",
    )


def _visitors_with_history(channel, count: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """``count`` visitors as (token, the history they must see as (role, text) pairs). Every fifth is
    on a first visit (nothing to see), every fifth has sent a first message the pipeline has not
    handled yet (no conversation so far); the others asked a question and got an answer, and every
    third of those has sent another message that is still waiting."""
    expected, conversations, waiting = [], [], []
    visitors = [issue(channel) for _ in range(count)]
    for i, issued in enumerate(visitors):
        if i % 5 == 0:
            expected.append([])
        elif i % 5 == 1:
            waiting.append(_waiting(channel, issued, i))
            expected.append([("user", f"still waiting {i}")])
        else:
            conversations.append(
                Conversation(
                    tenant=channel.bot.tenant,
                    bot=channel.bot,
                    channel=channel,
                    chat_id=issued.visitor.chat_id,
                    user_id=issued.visitor.visitor_id,
                )
            )
            expected.append([("user", f"question {i}"), ("assistant", f"answer {i}")])
            if i % 3 == 0:
                waiting.append(_waiting(channel, issued, i))
                expected[-1].append(("user", f"still waiting {i}"))
    by_chat = {c.chat_id: c for c in Conversation.objects.bulk_create(conversations)}
    questions, answers = [], []
    for i, issued in enumerate(visitors):
        conv = by_chat.get(issued.visitor.chat_id)
        if conv is not None:
            questions.append(Message(conversation=conv, role=Message.Role.USER, text=f"question {i}"))
            answers.append(Message(conversation=conv, role=Message.Role.ASSISTANT, text=f"answer {i}"))
    # Answers after questions: later timestamps and ids, as the pipeline writes them.
    Message.objects.bulk_create(questions)
    Message.objects.bulk_create(answers)
    InboundMessage.objects.bulk_create(waiting)
    return [(issued.token, seen) for issued, seen in zip(visitors, expected, strict=True)]


def test_a_burst_of_visitors_all_get_their_own_history_quickly(chat_channel):
    visitors = _visitors_with_history(chat_channel, BURST)
    parley = LiveParley().start()
    url = f"ws://127.0.0.1:{parley.port}/ws/chat/{chat_channel.key}/"

    async def open_chat(token: str) -> list[tuple[str, str]]:
        async with connect(
            url, origin=ORIGIN, subprotocols=["parley.v1", f"parley.auth.{token}"], ping_interval=None
        ) as ws:
            frame = json.loads(await ws.recv())
        assert frame["type"] == "history", frame
        return [(m["role"], m["text"]) for m in frame["messages"]]

    async def burst() -> list[list[tuple[str, str]]]:
        return await asyncio.wait_for(
            asyncio.gather(*(open_chat(token) for token, _ in visitors)), timeout=BURST_SECONDS
        )

    try:
        started = time.monotonic()
        histories = asyncio.run(burst())
        took = time.monotonic() - started
    finally:
        parley.stop()
    assert histories == [seen for _, seen in visitors]
    assert took < BURST_SECONDS


def _connects(token: str, origin: str = ORIGIN) -> bool:
    async def attempt() -> bool:
        comm = communicator(token=token, origin=origin)
        accepted, _ = await comm.connect()
        if accepted:
            assert (await comm.receive_json_from())["type"] == "history"
            await comm.disconnect()
        return accepted

    return async_to_sync(attempt)()


def _seconds_until(predicate, limit: float) -> float:
    """Seconds from now until the start of the first ``predicate()`` call that is true (the time a
    check itself takes, long on a busy machine, is not counted)."""
    started = time.monotonic()
    while True:
        asked = time.monotonic()
        if predicate():
            return asked - started
        if asked - started > limit:
            raise AssertionError(f"still not so after {limit} s")
        time.sleep(0.05)


def test_a_channel_disabled_from_another_process_refuses_new_sockets_within_the_cache_time(chat_channel, settings):
    settings.PARLEY_CHANNEL_CACHE_SECONDS = 1
    token = issue(chat_channel).token
    assert _connects(token)  # the lookup is remembered now
    # A queryset update sends no signal: what this process sees of a change made by another one.
    Channel.objects.filter(pk=chat_channel.pk).update(enabled=False)
    assert _seconds_until(lambda: not _connects(token), limit=20) <= 5  # 1 s, plus a busy machine (not 3600 s)


def test_changed_allowed_origins_reach_new_sockets_within_the_cache_time(chat_channel, settings):
    settings.PARLEY_CHANNEL_CACHE_SECONDS = 1
    token = issue(chat_channel).token
    assert _connects(token)
    Channel.objects.filter(pk=chat_channel.pk).update(allowed_origins="https://new-shop.example.com\n")
    assert _seconds_until(lambda: not _connects(token), limit=20) <= 5
    assert _connects(token, origin="https://new-shop.example.com")


@pytest.mark.parametrize("change", ["channel", "bot", "tenant"])
def test_a_change_saved_in_this_process_reaches_the_next_socket_at_once(chat_channel, settings, change):
    settings.PARLEY_CHANNEL_CACHE_SECONDS = 3600  # only the save itself can make it visible
    token = issue(chat_channel).token
    assert _connects(token)
    if change == "channel":
        chat_channel.enabled = False
        chat_channel.save()
    elif change == "bot":
        chat_channel.bot.enabled = False
        chat_channel.bot.save()
    else:
        chat_channel.bot.tenant.is_active = False
        chat_channel.bot.tenant.save()
    assert not _connects(token)
