"""Tool servers: the tools a bot may call on the tenant's Model Context Protocol servers.

Spoken with the official ``mcp`` SDK over streamable HTTP. Every request goes through the
outbound guard (``apps.core.netguard``: the same blocked networks as workflows and model
endpoints, checked at connect time), carries the server's headers (stored encrypted) and ends
within the server's timeout (and the answer's deadline).

What a message costs: a bot's tool-server choices are remembered per process for
``workflow_cache_seconds()`` (as its workflows), each server's tool list for
``PARLEY_TOOL_LIST_CACHE_SECONDS`` (a list that could not be fetched is retried after a short
while, and the bot answers without those tools meanwhile). Saving or deleting a server or a bot's
choice forgets them in this process at once.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core import netguard
from apps.core.ttlcache import TTLCache

from .models import BotToolServer, ToolServer
from .selectors import workflow_cache_seconds

logger = logging.getLogger(__name__)
#: Seconds a tool list that could not be fetched is remembered as empty before it is tried again.
FAILED_LIST_SECONDS = 30.0
#: Characters of a tool's description and result passed on at most.
DESCRIPTION_CHARS = 1000
RESULT_CHARS = 4000


@dataclass(frozen=True)
class Server:
    """What a call needs, read once (no database on the calling thread)."""

    id: int
    name: str
    url: str
    headers: tuple[tuple[str, str], ...]
    timeout_s: float


@dataclass(frozen=True)
class Choice:
    server: Server
    tools: tuple[str, ...]  # empty: every tool the server lists


def list_cache_seconds() -> float:
    return max(0.0, float(settings.PARLEY_TOOL_LIST_CACHE_SECONDS))


# --- talking to a server --------------------------------------------------------------------------


def _client_factory(
    headers: dict[str, str] | None = None, timeout: httpx.Timeout | None = None, auth: httpx.Auth | None = None
) -> httpx.AsyncClient:
    # Redirects are not followed: the guard checks the address of the URL the admin gave.
    return netguard.guarded_async_client(
        headers=headers, timeout=timeout or httpx.Timeout(30.0), auth=auth, follow_redirects=False
    )


@asynccontextmanager
async def _session(server: Server, timeout: float):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with (
        streamablehttp_client(
            server.url,
            headers=dict(server.headers),
            timeout=timeout,
            sse_read_timeout=timeout,
            httpx_client_factory=_client_factory,
        ) as (read, write, _session_id),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _run(job, timeout: float) -> Any:
    """Run ``job`` (an async function) to its end within ``timeout`` seconds, on this thread."""

    async def bounded():
        with anyio.fail_after(timeout):
            return await job()

    return anyio.run(bounded)


def fetch_tools(server: Server) -> list[dict]:
    """The server's tools now: ``[{"name", "description", "parameters"}]``. Raises on failure."""

    async def job():
        async with _session(server, server.timeout_s) as session:
            found, cursor = [], None
            while True:
                page = await session.list_tools(cursor) if cursor else await session.list_tools()
                found += page.tools
                cursor = page.nextCursor
                if not cursor or len(found) > 500:
                    return found

    tools = _run(job, server.timeout_s)
    return [
        {
            "name": t.name,
            "description": (t.description or t.title or t.name)[:DESCRIPTION_CHARS],
            "parameters": t.inputSchema or {"type": "object", "properties": {}},
        }
        for t in tools
    ]


def call_tool(server: Server, name: str, arguments: dict, *, timeout: float) -> tuple[bool, dict]:
    """Call one tool; ``(ok, what the model is told)``. Never raises for the server's trouble."""
    limit = max(0.5, min(timeout, server.timeout_s))

    async def job():
        async with _session(server, limit) as session:
            return await session.call_tool(name, arguments)

    try:
        result = _run(job, limit)
    except TimeoutError:
        return False, {"ok": False, "error": f"{name} on {server.name} did not answer within {limit:g} s"}
    except Exception as exc:
        logger.warning("tool server call failed", extra={"server": server.id, "tool": name, "error": _why(exc)})
        return False, {"ok": False, "error": f"{name} on {server.name} failed: {_why(exc)}"}
    text = "".join(getattr(c, "text", "") or "" for c in result.content or [])
    told: dict[str, Any] = {"ok": not result.isError}
    if result.isError:
        told["error"] = text[:RESULT_CHARS] or f"{name} failed"
    elif result.structuredContent is not None:
        told["result"] = result.structuredContent
    else:
        try:
            told["result"] = json.loads(text) if len(text) <= RESULT_CHARS else text[:RESULT_CHARS]
        except ValueError:
            told["result"] = text[:RESULT_CHARS]
    return not result.isError, told


def _why(exc: BaseException) -> str:
    """What went wrong, without the URL (it may carry a token)."""
    inner = getattr(exc, "exceptions", None)
    if inner:  # an exception group from the SDK's task group
        return _why(inner[0])
    if isinstance(exc, netguard.OutboundRefused):
        return "the address is blocked by the outbound guard"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPError):
        return "connection failed"
    return type(exc).__name__


# --- what a bot may call, remembered per process --------------------------------------------------


def _server(row: ToolServer) -> Server:
    return Server(
        id=row.pk,
        name=row.name,
        url=row.url,
        headers=tuple(sorted(row.header_dict().items())),
        timeout_s=float(min(row.timeout_s, settings.PARLEY_TOOL_SERVER_TIMEOUT or row.timeout_s)),
    )


def _load_choices(bot) -> tuple[Choice, ...]:
    rows = BotToolServer.objects.filter(bot_id=bot.pk, server__enabled=True, server__tenant_id=bot.tenant_id)
    return tuple(Choice(_server(r.server), tuple(r.tools or ())) for r in rows.select_related("server"))


_choices: TTLCache[int, tuple[Choice, ...]] = TTLCache(workflow_cache_seconds)
_lists: TTLCache[tuple, tuple[dict, ...]] = TTLCache(list_cache_seconds, max_keys=1000)
_failed: dict[tuple, float] = {}  # when a server's list last could not be fetched
_servers: dict[int, Server] = {}  # by id: what a call on another thread needs


def server_tools(server: Server) -> tuple[dict, ...]:
    """The server's tool list, remembered (empty while it cannot be fetched)."""
    key = (server.id, server.url, server.headers)
    failed_at = _failed.get(key)
    if failed_at is not None and time.monotonic() - failed_at < FAILED_LIST_SECONDS:
        return ()

    def load() -> tuple[dict, ...]:
        return tuple(fetch_tools(server))

    try:
        tools = _lists.get(key, load)
    except Exception as exc:  # nothing is remembered by the cache: retried after FAILED_LIST_SECONDS
        logger.warning("tool server list failed", extra={"server": server.id, "error": _why(exc)})
        _failed[key] = time.monotonic()
        return ()
    _failed.pop(key, None)
    return tools


def bot_server_tools(bot, make) -> list:
    """The tools ``bot`` may call on its tool servers, as ``make(...)`` builds them."""
    out = []
    for choice in _choices.get(bot.pk, lambda: _load_choices(bot)):
        _servers[choice.server.id] = choice.server
        wanted = set(choice.tools)
        for t in server_tools(choice.server):
            if wanted and t["name"] not in wanted:
                continue
            out.append(
                make(
                    name=t["name"],
                    description=t["description"],
                    parameters=t["parameters"],
                    kind="mcp",
                    label=f"{t['name']} ({choice.server.name})",
                    server_id=choice.server.id,
                )
            )
    return out


def call_server_tool(server_id: int, name: str, arguments: dict, *, timeout: float) -> tuple[bool, dict]:
    server = _servers.get(server_id)
    if server is None:
        return False, {"ok": False, "error": f"the tool server of {name} is not available now"}
    return call_tool(server, name, arguments, timeout=timeout)


def forget_tool_servers() -> None:
    _choices.clear()
    _lists.clear()
    _failed.clear()


@receiver(post_save, sender=ToolServer)
@receiver(post_delete, sender=ToolServer)
@receiver(post_save, sender=BotToolServer)
@receiver(post_delete, sender=BotToolServer)
def _changed(**kwargs) -> None:
    forget_tool_servers()
