"""The contract of a long-connection client, and what the supervisor hands it.

A ``Connector`` holds one outbound connection for one channel. ``run(link)`` connects, reads until
the connection ends and returns (the platform asked for a reconnect) or raises (the connection
failed or dropped); the supervisor reconnects with backoff. Each event is stored through
``link.deliver`` — the adapter's own parsing, then ``accept_inbound``, exactly as a webhook — and
acknowledged only once ``deliver`` says it is stored, so a message the database did not take is
delivered again by the platform. Replies go out through the adapter's ``send`` as for webhooks.

Connectors never log URLs, tickets, tokens or payloads: the URLs they are handed carry one-off
credentials, and payloads carry users' words.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from apps.channels.platforms.base import Inbound
from apps.channels.platforms.http import json_object

#: The websockets library logs the request line (with its ``?ticket=``) at DEBUG: give it a logger
#: that never goes below INFO, whatever LOG_LEVEL says.
wire_logger = logging.getLogger("apps.channels.connectors.wire")
wire_logger.setLevel(logging.INFO)


class ConnectorError(Exception):
    """The connection could not be made or was lost. ``permanent``: retrying soon cannot help (bad
    credentials, a setting the operator must change); the supervisor then waits the longest delay.
    The message must never carry a secret."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


async def post_json(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], *, what: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON; the status and the JSON object answered ({} when it is not one).
    A network failure raises ``ConnectorError`` naming ``what`` and the error's type only: the URL
    may carry a token."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ConnectorError(f"{what}: {type(exc).__name__}") from None
    return response.status_code, json_object(response)


@dataclass
class Credential:
    """A credential a connector reads from the channel, and whether it must be there."""

    key: str
    required: bool = True


class Link:
    """What a connector needs from the supervisor while it runs one channel's connection."""

    def __init__(
        self,
        *,
        channel: Any,
        deliver: Callable[[Callable[[Any], list[Inbound]]], Awaitable[bool]],
        connected: Callable[[], None],
        log: logging.LoggerAdapter,
        call: Callable[[Callable[[Any], Any]], Awaitable[Any]] | None = None,
    ) -> None:
        self.channel = channel
        self._deliver = deliver
        self._call = call
        self._connected = connected
        self.log = log

    async def deliver(self, build: Callable[[Any], list[Inbound]]) -> bool:
        """Store the messages ``build(channel)`` returns (called on a worker thread, may raise
        ``WebhookRejected``). True when they are stored or deliberately dropped (so the event may be
        acknowledged); False when storing failed and the platform should deliver it again."""
        return await self._deliver(build)

    async def call(self, work: Callable[[Any], Any]) -> Any:
        """``work(channel)`` on the channel's worker thread (where the ORM may be used), with the
        channel's log context; its result, or None when it raised (logged)."""
        if self._call is None:
            raise RuntimeError("this link runs no work on the channel's thread")
        return await self._call(work)

    def connected(self) -> None:
        """The connection is up and receiving (a hello, the first frame or poll answered)."""
        self._connected()


class Connector:
    """One platform's long-connection client (see the module docstring)."""

    platform: ClassVar[str] = ""
    #: Credentials the connection needs, beyond the adapter's own (e.g. Slack's app-level token).
    extra_credentials: ClassVar[tuple[str, ...]] = ()
    #: Credentials that must be set for a long-connection channel of this platform.
    required_credentials: ClassVar[tuple[str, ...]] = ()
    #: What the admin does in the platform's console to switch the app to this mode.
    console_hint: ClassVar[str] = ""
    #: Clicks on an answer's rating buttons arrive over this connection and are recorded, so
    #: answers on such a channel carry the buttons (``rating_buttons_enabled``).
    rating_clicks: ClassVar[bool] = False

    async def run(self, link: Link) -> None:
        raise NotImplementedError
