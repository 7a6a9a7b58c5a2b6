"""A test-only IM platform ("fakeim"): JSON webhooks in, replies POSTed to a FakeServer.

Registered only in tests (``conftest.py`` for the test process, ``run_worker.py`` for worker
processes). Its "platform API" is ``{channel.api_base}/send``, so sends are observable from the
test process whichever process made them.
"""

from __future__ import annotations

import json
import uuid

import httpx

from apps.channels.platforms.base import Inbound, MalformedRequest, PlatformAdapter, PlatformError, SentRef

PLATFORM = "fakeim"
# One pooled client for the process, as a real adapter keeps (a new client per send would spend
# most of its time building a TLS context).
_http = httpx.Client(timeout=5)
ADAPTER_PATH = "tests.conversations.fake_platform.FakeIMAdapter"


class FakeIMAdapter(PlatformAdapter):
    platform = PLATFORM

    def verify(self, request, channel) -> None:
        return None

    def parse(self, request, channel) -> list[Inbound]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise MalformedRequest("not JSON") from exc
        items = body.get("messages") or [body]
        return [
            Inbound(
                message_id=str(m["id"]),
                chat_id=str(m.get("chat", "chat-1")),
                user_id=str(m.get("user", "u1")),
                user_name=str(m.get("name", "")),
                text=str(m.get("text", "")),
                is_group=bool(m.get("group", False)),
                raw=m,
            )
            for m in items
        ]

    def send(self, channel, target, reply) -> SentRef:
        payload = {
            "chat": target.chat_id,
            "user": target.user_id,
            "text": reply.markdown,
            "feedback_url": reply.feedback_url,
            "idempotency_key": reply.idempotency_key,
        }
        try:
            resp = _http.post(f"{channel.api_base}/send", json=payload)
        except httpx.HTTPError as exc:
            raise PlatformError(f"send failed: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise PlatformError(f"send failed: {resp.status_code}", permanent=resp.status_code < 500)
        return SentRef(platform_message_id=uuid.uuid4().hex[:12])
