"""Live inbox updates: a small event per change, published to the tenant's channel-layer group
after the transaction commits; every agent's inbox socket of that tenant receives it
(``consumers.InboxConsumer``) and the page reads what changed over HTTP, with the agent's own
permissions. Events carry ids and a kind, never message text, so nothing of a conversation
travels to a socket that was not allowed to read it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

#: The consumer method that forwards an event (``inbox.event`` → ``inbox_event``).
EVENT = "inbox.event"
PUBLISH_TIMEOUT = 5.0
_server_loop: asyncio.AbstractEventLoop | None = None


def tenant_group(tenant_id: int) -> str:
    return f"inbox.tenant.{int(tenant_id)}"


def register_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the inbox consumer: the event loop that serves sockets in this process."""
    global _server_loop
    _server_loop = loop


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _server_loop
    try:
        on_that_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
        on_that_loop = False
    if loop is not None and loop.is_running() and not on_that_loop:
        # The in-memory layer of the embedded default belongs to the server's loop (as in the web
        # chat's adapter): hand the send to it rather than touching its queues from this thread.
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=PUBLISH_TIMEOUT)
        return
    async_to_sync(layer.group_send)(group, message)


def publish(tenant_id: int, event: dict[str, Any]) -> None:
    """Send ``event`` to the tenant's inbox sockets now. Best effort: a live update that cannot be
    published is logged; the inbox still shows it on its next read."""
    try:
        _group_send(tenant_group(tenant_id), {"type": EVENT, "event": event})
    except Exception as exc:
        logger.warning("inbox update not published: %s", exc.__class__.__name__)


def changed(handoff: Any, kind: str) -> None:
    """Tell the tenant's inbox that ``handoff`` changed (``kind``: requested, claimed, replied,
    message, summary, resolved, timed_out) once the current transaction commits."""
    event = {"kind": kind, "handoff": handoff.pk, "state": handoff.state}
    tenant_id = handoff.tenant_id
    transaction.on_commit(lambda: publish(tenant_id, event))
