"""What a visitor and an operator see of a Parley that deploy/install.sh set up, through its nginx.

    installer_client.py first  --domain D --cafile ROOT.pem --key CHANNEL --state FILE
    installer_client.py second --domain D --cafile ROOT.pem --key CHANNEL --state FILE

``first``: HTTPS /healthz with the certificate checked against the issuing CA's root; plain HTTP is
redirected to HTTPS except the ACME path; a visitor token; a web-chat WebSocket (wss://, through
nginx's upgrade) where a message is acknowledged and answered. The visitor's token and conversation
go to FILE. ``second`` (after an upgrade): the same visitor continues the same conversation and its
history still holds the first message and its answer.

The domain must resolve to this machine (installer-ci.sh puts it in /etc/hosts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import uuid
from pathlib import Path

import httpx
import websockets

WAIT = 60.0


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"installer_client: {message}")
    print(f"   ok: {message}")


async def frames_until(ws, wanted: str, *, reply_to: str | None = None) -> list[dict]:
    seen: list[dict] = []
    async with asyncio.timeout(WAIT):
        while True:
            frame = json.loads(await ws.recv())
            seen.append(frame)
            if frame.get("type") == "error":
                raise SystemExit(f"installer_client: error frame {frame}")
            if frame.get("type") == wanted and (reply_to is None or frame.get("reply_to") == reply_to):
                return seen


def token(client: httpx.Client, base: str, key: str, earlier: str | None = None) -> dict:
    body = {"token": earlier} if earlier else {}
    response = client.post(f"{base}/api/v1/webchat/{key}/token", json=body, headers={"Origin": base})
    check(response.status_code == 200, f"POST /api/v1/webchat/{key}/token → {response.status_code}")
    return response.json()


async def chat(base: str, domain: str, tls: ssl.SSLContext, issued: dict, *, send: str | None) -> list[dict]:
    url = f"wss://{domain}{issued['ws_path']}"
    async with websockets.connect(
        url,
        ssl=tls,
        origin=base,
        subprotocols=["parley.v1", f"parley.auth.{issued['token']}"],
        open_timeout=WAIT,
    ) as ws:
        check(ws.subprotocol == "parley.v1", f"WebSocket upgrade through nginx ({url})")
        history = (await frames_until(ws, "history"))[-1]["messages"]
        if send is None:
            return history
        message_id = f"ci-{uuid.uuid4().hex[:12]}"
        await ws.send(json.dumps({"type": "message", "id": message_id, "text": send}))
        frames = await frames_until(ws, "ack")
        check(frames[-1]["id"] == message_id, "the message was stored (ack)")
        answer = (await frames_until(ws, "message", reply_to=message_id))[-1]
        check(bool(answer.get("text")), f"the bot answered through the socket: {answer['text'][:60]!r}")
        return [*history, {"id": message_id, "role": "user", "text": send}, answer]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["first", "second"])
    parser.add_argument("--domain", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    base = f"https://{args.domain}"
    tls = ssl.create_default_context(cafile=args.cafile)

    with httpx.Client(verify=tls, timeout=WAIT) as client:
        health = client.get(f"{base}/healthz")
        check(health.status_code == 200, f"GET {base}/healthz over verified TLS → {health.status_code}")
        plain = client.get(f"http://{args.domain}/healthz")
        check(
            plain.status_code == 301 and plain.headers["location"] == f"{base}/healthz",
            "plain HTTP is redirected to HTTPS",
        )
        acme = client.get(f"http://{args.domain}/.well-known/acme-challenge/missing")
        check(acme.status_code == 404, "the ACME challenge path is served on plain HTTP, not redirected")
        if args.phase == "first":
            issued = token(client, base, args.key)
            text = "Hello from the installer check"
            asyncio.run(chat(base, args.domain, tls, issued, send=text))
            state = {"token": issued["token"], "conversation": issued["conversation_id"], "text": text}
            args.state.write_text(json.dumps(state))
            return 0
        state = json.loads(args.state.read_text())
        issued = token(client, base, args.key, earlier=state["token"])
        check(
            issued["continued"] and issued["conversation_id"] == state["conversation"],
            "after the upgrade the visitor continues the same conversation",
        )
        history = asyncio.run(chat(base, args.domain, tls, issued, send=None))
        roles = [(m.get("role"), m.get("text")) for m in history]
        check(("user", state["text"]) in roles, "the first message is still in the conversation's history")
        check(any(role == "assistant" for role, _ in roles), "and so is the bot's answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
