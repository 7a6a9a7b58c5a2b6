"""Web-chat fixtures: a web channel, visitor tokens, and WebSocket communicators on the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.channels.platforms.web.visitor import visitor_token_issue
from tests.factories import make_bot, make_channel, make_tenant

ORIGIN = "https://shop.example.com"


@pytest.fixture
def chat_channel(transactional_db):
    """A web channel embedded on ``ORIGIN`` (committed rows: the consumer reads them from other threads)."""
    bot = make_bot(make_tenant("acme"), name="Helpdesk", greeting="Hi! Ask me anything.")
    return make_channel(bot, platform="web", key="acme-web", allowed_origins=ORIGIN + "\n")


def _forget_layer() -> None:
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture(autouse=True)
def _fresh_layer():
    """Each test gets a channel layer of its own, and leaves no groups behind.

    Every scenario runs on an event loop of its own (``async_to_sync``), while channels-redis keeps
    per-loop state in the layer object: its per-channel receive locks are asyncio locks, and one left
    behind by a socket closed while it waited (its waiter count is never taken back) is bound to
    that test's loop. A layer shared by the tests handed such a lock to a later test's loop, which
    failed now and then with "is bound to a different event loop" (on PostgreSQL + Redis only; the
    in-memory layer keeps no locks). A served process has one loop, so this is the tests' concern.
    """
    _forget_layer()
    yield
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        from asgiref.sync import async_to_sync

        async_to_sync(layer.flush)()
    _forget_layer()


def issue(channel: Any, **kw: Any):
    return visitor_token_issue(channel=channel, **kw)


#: Generous: the CI machine is small and shared, and a timeout here only bounds a failing test.
WAIT = 20


class Communicator(WebsocketCommunicator):
    """WebsocketCommunicator with waits that suit a busy machine."""

    async def connect(self, timeout: float = WAIT):
        return await super().connect(timeout)

    async def receive_output(self, timeout: float = WAIT):
        return await super().receive_output(timeout)

    async def receive_from(self, timeout: float = WAIT):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout: float = WAIT):
        return await super().receive_json_from(timeout)


def communicator(
    key: str = "acme-web", *, token: str | None = None, origin: str | None = ORIGIN, protocols: list[str] | None = None
) -> Communicator:
    from config.asgi import application

    headers = [(b"host", b"parley.example.org")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if protocols is None:
        protocols = ["parley.v1"] + ([f"parley.auth.{token}"] if token else [])
    return Communicator(application, f"/ws/chat/{key}/", headers=headers, subprotocols=protocols)


async def frames_until(comm: WebsocketCommunicator, frame_type: str, timeout: float = WAIT) -> list[dict]:
    """Every frame received up to and including the first of ``frame_type``."""
    seen = []
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        seen.append(frame)
        if frame["type"] == frame_type:
            return seen


async def drain(comm: WebsocketCommunicator, quiet: float = 1.0) -> list[dict]:
    """Every frame that arrives until the socket has been quiet for ``quiet`` seconds."""
    seen = []
    while not await comm.receive_nothing(timeout=quiet):
        seen.append(await comm.receive_json_from())
    return seen
