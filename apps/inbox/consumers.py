"""The inbox socket: ``/ws/inbox/``. Signed-in staff who work in a tenant's inbox (agents, owners,
admins; superusers for every tenant) join that tenant's group and receive its events (``live``):
small JSON objects ``{kind, handoff, state}``; the page then reads what changed over HTTP.
Anyone else is refused before the upgrade (403). The route checks the Origin against
ALLOWED_HOSTS, as a cookie-authenticated socket must."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.tenants.models import Tenant

from . import live
from .services import handoff_tenant_ids


def _groups_for(user: Any) -> list[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:
        return []
    ids = handoff_tenant_ids(user)
    if ids is None:
        ids = set(Tenant.objects.values_list("pk", flat=True))
    return [live.tenant_group(i) for i in sorted(ids)]


class InboxConsumer(AsyncWebsocketConsumer):
    joined: list[str]

    async def connect(self) -> None:
        live.register_server_loop(asyncio.get_running_loop())
        self.joined = await database_sync_to_async(_groups_for)(self.scope.get("user"))
        if not self.joined:
            await self.close()
            return
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and text_data.strip() == '{"type":"ping"}':
            await self.send(text_data='{"type":"pong"}')

    async def inbox_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "event", **event["event"]}))
