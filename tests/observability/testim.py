"""A tiny test-only IM platform ("testim"), so observability tests can drive the real webhook →
accept → task → reply path without depending on any real platform's adapter.

Wire format: POST JSON ``{"id", "chat", "user", "text"}`` signed with ``X-Testim-Signature:
hex(HMAC-SHA256(secret, body))``; replies go to ``POST <api_base>/send`` and a 4xx answer is a
permanent send failure, 5xx a retryable one.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from apps.channels.platforms.base import (
    Inbound,
    MalformedRequest,
    PlatformAdapter,
    PlatformError,
    SentRef,
    SignatureInvalid,
)

PLATFORM = "testim"
ADAPTER_PATH = "tests.observability.testim.TestimAdapter"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TestimAdapter(PlatformAdapter):
    platform = PLATFORM
    credential_keys = ("secret",)
    required_credentials = ("secret",)

    def verify(self, request, channel):
        expected = sign(channel.credentials.get("secret", ""), request.body)
        if not hmac.compare_digest(request.headers.get("X-Testim-Signature", ""), expected):
            raise SignatureInvalid()

    def parse(self, request, channel):
        try:
            data = json.loads(request.body)
            return [Inbound(message_id=data["id"], chat_id=data["chat"], user_id=data["user"], text=data["text"])]
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedRequest(f"bad testim payload: {exc}") from exc

    def send(self, channel, target, reply):
        resp = httpx.post(
            f"{self.api_base(channel)}/send", json={"chat": target.chat_id, "text": reply.markdown}, timeout=5
        )
        if resp.status_code >= 400:
            raise PlatformError(f"send failed: HTTP {resp.status_code}", permanent=resp.status_code < 500)
        return SentRef(platform_message_id=str(resp.json().get("id", "")))
