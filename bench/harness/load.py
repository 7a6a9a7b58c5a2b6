"""The bench's outside world: the load generator and the fake IM platform, in one asyncio process.

Each run is one phase; the orchestrator starts it, reads the JSON result from the last line of
stdout, and it exits. Traffic goes to 127.0.0.1 only.

Modes
* ``open``   — open-loop signed Slack webhooks at a fixed rate for a fixed time (each message from
  a new direct-message chat), then waits for every reply. Ack latency per request; end-to-end time
  per message (reply received at the fake Slack minus send start); lost, duplicated and stray
  replies. ``--no-replies`` for the bare ASGI ceiling (acks only).
* ``closed`` — ``--users`` simulated people; each sends, waits for its reply, sends again.
* ``sequential`` — one message at a time from fresh chats (``--text`` fixed): the cache phase.
* ``ws``     — opens ``--count`` idle web-chat sockets, prints ``READY <json>``, holds them until a
  line arrives on stdin, then closes them and prints the result.

The fake Slack (``chat.postMessage`` on ``--slack-port``) runs in this same event loop, so a reply
wakes its waiting sender at once and is timed on the same clock as the send. Why Slack: its adapter
has landed, its inbound check is an HMAC over ``v0:<timestamp>:<body>`` (cheap to sign per
request), and its outbound API takes the channel's ``api_base``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import resource
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

MARKER_RE = re.compile(r"\[bench:([A-Za-z0-9_-]{1,64})\]")


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p99": pct(ms, 99),
        "max": max(ms) if ms else None,
        "mean": sum(ms) / len(ms) if ms else None,
    }


# --- the fake IM platform -------------------------------------------------------------------------


@dataclass
class Reply:
    channel: str
    text: str
    at: float  # time.monotonic() when the request reached the fake
    thread_ts: str = ""


@dataclass
class FakeSlack:
    """``chat.postMessage`` recording every reply with its arrival time; wakes waiting senders.
    ``chat.update`` / ``chat.delete`` edit a posted message (a streamed answer's final edit), as
    Slack does; a reply is counted when it is posted, so a streamed one is timed at its first text.
    ``conversations.history`` / ``conversations.replies`` answer from the posted messages (with
    their metadata when asked), so a send whose answer came too late is found, not posted again."""

    replies: list[Reply] = field(default_factory=list)
    by_channel: dict[str, list[Reply]] = field(default_factory=lambda: defaultdict(list))
    #: Posted messages as Slack's history shows them (ts, text, thread_ts, metadata), per channel.
    history: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    history_reads: int = 0
    updates: int = 0  # chat.update calls taken (the final edits of streamed answers)
    waiters: dict[str, asyncio.Future] = field(default_factory=dict)
    bad_auth: int = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        at = time.monotonic()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope.get("headers") or [])
        if not headers.get(b"authorization", b"").startswith(b"Bearer xoxb-"):
            self.bad_auth += 1
            await _json(send, 200, {"ok": False, "error": "not_authed"})
            return
        ctype = headers.get(b"content-type", b"")
        if ctype.startswith(b"application/json"):
            data = json.loads(body or b"{}")
        else:
            data = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        method = scope["path"].rsplit("/", 1)[-1]
        if method in ("conversations.history", "conversations.replies"):
            query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
            await _json(send, 200, self._read_history(method, {**query, **data}))
            return
        if method in ("chat.update", "chat.delete"):
            # A streamed answer: its first text was posted (and counted) already; the final edit
            # adds the rating buttons. Answered as Slack does for a message that exists.
            channel, ts = str(data.get("channel") or ""), str(data.get("ts") or "")
            known = [m for m in self.history.get(channel, []) if m["ts"] == ts]
            if not known:
                await _json(send, 200, {"ok": False, "error": "message_not_found"})
                return
            if method == "chat.update":
                known[0]["text"] = str(data.get("text") or known[0]["text"])
                self.updates += 1
            else:
                self.history[channel].remove(known[0])
            await _json(send, 200, {"ok": True, "channel": channel, "ts": ts})
            return
        if method != "chat.postMessage":
            await _json(send, 200, {"ok": False, "error": "unknown_method"})
            return
        channel = str(data.get("channel") or "")
        reply = Reply(
            channel=channel, text=str(data.get("text") or ""), at=at, thread_ts=str(data.get("thread_ts", ""))
        )
        self.replies.append(reply)
        self.by_channel[channel].append(reply)
        waiter = self.waiters.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)
        ts = f"{time.time():.6f}"
        message = {"type": "message", "text": reply.text, "ts": ts}
        if reply.thread_ts:
            message["thread_ts"] = reply.thread_ts
        if isinstance(data.get("metadata"), dict):
            message["metadata"] = data["metadata"]
        self.history[channel].append(message)
        await _json(send, 200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": reply.text, "ts": ts}})

    def _read_history(self, method: str, args: dict) -> dict:
        """Newest first, since ``oldest``, at most ``limit``; in a thread for ``conversations.replies``."""
        self.history_reads += 1
        try:
            oldest, limit = float(args.get("oldest") or 0), int(args.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        thread = str(args.get("ts") or "") if method == "conversations.replies" else ""
        if method == "conversations.replies" and not thread:
            return {"ok": False, "error": "thread_not_found"}
        with_metadata = str(args.get("include_all_metadata") or "").lower() in ("1", "true")
        found = [
            {k: v for k, v in m.items() if with_metadata or k != "metadata"}
            for m in reversed(self.history[str(args.get("channel") or "")])
            if float(m["ts"]) >= oldest and (not thread or m.get("thread_ts") == thread)
        ]
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}


async def _json(send, status: int, data: dict) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def start_fake_slack(port: int) -> tuple[FakeSlack, Any]:
    import uvicorn

    app = FakeSlack()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=4096, lifespan="on"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # the orchestrator owns signals
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    else:
        raise RuntimeError(f"fake Slack did not start on port {port}")
    return app, (server, task)


async def stop_fake_slack(handle: Any) -> None:
    server, task = handle
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 5)


# --- signed Slack webhooks ------------------------------------------------------------------------


class Webhooks:
    def __init__(self, base: str, key: str, secret: str, run_id: str) -> None:
        self.url = f"{base}/webhooks/slack/{key}/"
        self.secret = secret.encode()
        self.run_id = run_id
        self.seq = 0

    def request(self, *, channel: str, user: str, text: str) -> tuple[bytes, dict[str, str]]:
        self.seq += 1
        ts = f"{int(time.time())}.{self.seq:06d}"
        payload = {
            "token": "bench",
            "team_id": "TBENCH",
            "api_app_id": "ABENCH",
            "type": "event_callback",
            "event_id": f"Ev{self.run_id}{self.seq:07d}",
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": "TBENCH", "user_id": "UBENCHBOT", "is_bot": True}],
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": channel,
                "user": user,
                "text": text,
                "ts": ts,
                "event_ts": ts,
            },
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = str(int(time.time()))
        digest = hmac.new(self.secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + digest,
        }
        return body, headers


@dataclass
class Sent:
    key: str  # the marker (or the chat, for replies with no marker) the reply is matched on
    channel: str
    started: float
    ack_s: float | None = None
    status: int | None = None
    error: str = ""


def make_client(connections: int):
    # Not httpx: its async client costs ~1 ms of CPU per request, which made the generator the
    # bottleneck above ~150 req/s (docs/performance.md, finding 8). See lean_http.py.
    from bench.harness.lean_http import LeanClient

    return LeanClient(connections, timeout=20.0)


async def post(
    client, hooks: Webhooks, sent: Sent, text: str, user: str, gate: asyncio.Semaphore | None = None
) -> None:
    """Send one webhook. With ``gate`` (open loop) ``sent.started`` is the scheduled send time set
    by the caller, so time spent waiting for a free connection counts against the server, not
    hidden (no coordinated omission); the gate bounds the requests in flight."""
    body, headers = hooks.request(channel=sent.channel, user=user, text=text)
    if gate is None:
        sent.started = time.monotonic()
        await _post(client, hooks, sent, body, headers)
        return
    async with gate:
        await _post(client, hooks, sent, body, headers)


async def _post(client, hooks: Webhooks, sent: Sent, body: bytes, headers: dict[str, str]) -> None:
    try:
        resp = await client.post(hooks.url, content=body, headers=headers)
        sent.ack_s = time.monotonic() - sent.started
        sent.status = resp.status_code
    except Exception as exc:  # counted and reported, never fatal: the phase goes on
        sent.ack_s = time.monotonic() - sent.started
        sent.error = type(exc).__name__


def match_replies(slack: FakeSlack, sent: list[Sent]) -> dict[str, Any]:
    """End-to-end times, lost, duplicated and stray replies for ``sent`` (matched on marker/chat)."""
    expected = {s.key: s for s in sent if s.status == 200}
    got: dict[str, list[Reply]] = defaultdict(list)
    stray = 0
    for r in slack.replies:
        found = MARKER_RE.search(r.text)
        key = found.group(1) if found else r.channel
        if key in expected:
            got[key].append(r)
        else:
            stray += 1
    e2e = [got[k][0].at - s.started for k, s in expected.items() if got.get(k)]
    lost = sum(1 for k in expected if not got.get(k))
    dup = sum(len(v) - 1 for v in got.values() if len(v) > 1)
    return {"e2e": e2e, "lost": lost, "duplicated": dup, "stray": stray, "replied": len(e2e)}


async def drain(slack: FakeSlack, want: int, *, idle: float, cap: float) -> float:
    """Wait until ``want`` replies arrived, or none for ``idle`` s, or ``cap`` s. Returns seconds waited."""
    started = last_change = time.monotonic()
    seen = len(slack.replies)
    while len(slack.replies) < want:
        now = time.monotonic()
        if now - last_change > idle or now - started > cap:
            break
        await asyncio.sleep(0.05)
        if len(slack.replies) != seen:
            seen, last_change = len(slack.replies), time.monotonic()
    # Duplicates come late (a retry after a lost ack): keep listening a little.
    await asyncio.sleep(1.0)
    return time.monotonic() - started


def status_counts(sent: list[Sent]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for s in sent:
        counts[str(s.status) if s.status is not None else (s.error or "none")] += 1
    return dict(counts)


# --- modes --------------------------------------------------------------------------------------


async def run_open(args) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    hooks = Webhooks(args.target, args.key, args.secret, run_id)
    slack, handle = (None, None) if args.no_replies else await start_fake_slack(args.slack_port)
    client = make_client(args.connections)
    total = int(args.rate * args.seconds)
    sent: list[Sent] = []
    tasks: list[asyncio.Task] = []
    lags: list[float] = []
    gate = asyncio.Semaphore(args.connections)
    t0 = time.monotonic() + 0.05
    for i in range(total):
        due = t0 + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(max(0.0, time.monotonic() - due))
        marker = f"{run_id}-{i}"
        s = Sent(key=marker, channel=f"D{run_id.upper()}{i:06d}", started=due)
        sent.append(s)
        text = f"Hello, can you help me with order {i}? [bench:{marker}]"
        user = f"U{run_id.upper()}{i:06d}"
        tasks.append(asyncio.create_task(post(client, hooks, s, text, user=user, gate=gate)))
    send_end = time.monotonic()
    # Bounded: requests still unanswered ``--ack-grace`` s after the last send are abandoned and
    # counted ("no ack in time"), so an overloaded server cannot hold the phase open.
    _, pending = await asyncio.wait(tasks, timeout=args.ack_grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for s in sent:
        if s.status is None and not s.error:
            s.error = "no ack in time"
    acked = [s for s in sent if s.status == 200]
    result: dict[str, Any] = {
        "mode": "open",
        "rate": args.rate,
        "seconds": args.seconds,
        "sent": len(sent),
        "offered_rate": len(sent) / max(send_end - t0, 1e-9),
        "statuses": status_counts(sent),
        "ack": summary_ms([s.ack_s for s in sent if s.ack_s is not None and s.status == 200]),
        "lag_p99_ms": (pct(lags, 99) or 0) * 1000,
        "lag_max_ms": max(lags) * 1000 if lags else 0,
    }
    if slack is not None:
        waited = await drain(slack, len(acked), idle=args.idle, cap=args.cap)
        matched = match_replies(slack, acked)
        in_time = [r for r in slack.replies if r.at <= send_end]
        result.update(
            {
                "e2e": summary_ms(matched["e2e"]),
                "lost": matched["lost"],
                "duplicated": matched["duplicated"],
                "stray": matched["stray"],
                "replied": matched["replied"],
                "drain_s": waited,
                "replies_per_s_during_send": len(in_time) / max(send_end - t0, 1e-9),
                "last_reply_after_send_s": (max(r.at for r in slack.replies) - send_end) if slack.replies else None,
            }
        )
        await stop_fake_slack(handle)
    await client.aclose()
    return result


async def run_closed(args) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    hooks = Webhooks(args.target, args.key, args.secret, run_id)
    slack, handle = await start_fake_slack(args.slack_port)
    client = make_client(max(args.users * 2, 8))
    sent: list[Sent] = []
    e2e: list[float] = []
    timeouts = 0
    start = time.monotonic()
    stop_at = start + args.seconds

    async def user(u: int) -> None:
        nonlocal timeouts
        channel = f"D{run_id.upper()}U{u:04d}"
        k = 0
        while time.monotonic() < stop_at:
            marker = f"{run_id}-{u}-{k}"
            k += 1
            s = Sent(key=marker, channel=channel, started=0.0)
            sent.append(s)
            waiter = asyncio.get_running_loop().create_future()
            slack.waiters[channel] = waiter
            text = f"Question {k} from user {u}: what is the status? [bench:{marker}]"
            await post(client, hooks, s, text, user=f"U{run_id.upper()}{u:04d}")
            if s.status != 200:
                slack.waiters.pop(channel, None)
                await asyncio.sleep(0.1)
                continue
            try:
                reply = await asyncio.wait_for(waiter, args.reply_timeout)
            except TimeoutError:
                timeouts += 1
                slack.waiters.pop(channel, None)
                continue
            e2e.append(reply.at - s.started)

    await asyncio.gather(*(user(u) for u in range(args.users)))
    elapsed = time.monotonic() - start
    acked = [s for s in sent if s.status == 200]
    await drain(slack, len(acked), idle=3, cap=10)
    matched = match_replies(slack, acked)
    await stop_fake_slack(handle)
    await client.aclose()
    return {
        "mode": "closed",
        "users": args.users,
        "seconds": elapsed,
        "sent": len(sent),
        "statuses": status_counts(sent),
        "msgs_per_s": len(e2e) / elapsed,
        "e2e": summary_ms(e2e),
        "ack": summary_ms([s.ack_s for s in acked if s.ack_s is not None]),
        "timeouts": timeouts,
        "lost": matched["lost"],
        "duplicated": matched["duplicated"],
    }


async def run_sequential(args) -> dict[str, Any]:
    run_id = secrets.token_hex(3)
    hooks = Webhooks(args.target, args.key, args.secret, run_id)
    slack, handle = await start_fake_slack(args.slack_port)
    client = make_client(4)
    times: list[float] = []
    failures = 0
    for i in range(args.count + args.prime):
        channel = f"D{run_id.upper()}S{i:04d}"
        s = Sent(key=channel, channel=channel, started=0.0)
        waiter = asyncio.get_running_loop().create_future()
        slack.waiters[channel] = waiter
        await post(client, hooks, s, args.text, user=f"U{run_id.upper()}S{i:04d}")
        try:
            reply = await asyncio.wait_for(waiter, args.reply_timeout)
        except TimeoutError:
            failures += 1
            continue
        if i >= args.prime:
            times.append(reply.at - s.started)
        await asyncio.sleep(0.02)
    await stop_fake_slack(handle)
    await client.aclose()
    return {"mode": "sequential", "reply": summary_ms(times), "failures": failures}


async def run_ws(args) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    tokens = json.loads(Path(args.tokens_file).read_text()) if args.tokens_file else []
    count = args.count
    if tokens and len(tokens) < count:
        count = len(tokens)
    sem = asyncio.Semaphore(args.connect_concurrency)
    sockets: list[Any] = []
    failures: dict[str, int] = defaultdict(int)
    handshake: list[float] = []

    async def one(i: int) -> None:
        protocols = ["parley.v1"] + ([f"parley.auth.{tokens[i]}"] if tokens else [])
        async with sem:
            started = time.monotonic()
            if started > give_up_at:
                failures["not tried: connect deadline"] += 1
                return
            try:
                ws = await connect(
                    args.url,
                    subprotocols=protocols,
                    origin="http://127.0.0.1",
                    ping_interval=None,
                    open_timeout=60,
                    close_timeout=2,
                    max_queue=4,
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if first.get("type") != "history":
                    failures[f"first frame {first.get('type')}"] += 1
                    await ws.close()
                    return
            except Exception as exc:
                failures[type(exc).__name__] += 1
                return
            handshake.append(time.monotonic() - started)
            sockets.append(ws)

    started = time.monotonic()
    give_up_at = started + args.deadline
    await asyncio.gather(*(one(i) for i in range(count)))
    ready = {
        "open": len(sockets),
        "failures": dict(failures),
        "connect_s": time.monotonic() - started,
        "handshake": summary_ms(handshake),
    }
    print("READY " + json.dumps(ready), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    # Still open after the hold? (A server that dropped idle sockets would show here.)
    alive = sum(1 for ws in sockets if ws.state.name == "OPEN")

    async def close(ws: Any) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await ws.close()

    await asyncio.gather(*(close(ws) for ws in sockets))
    return {"mode": "ws", **ready, "alive_after_hold": alive}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["open", "closed", "sequential", "ws"])
    parser.add_argument("--target", default="")
    parser.add_argument("--key", default="")
    parser.add_argument("--secret", default="")
    parser.add_argument("--slack-port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=128, help="open: connections (and requests) in flight")
    parser.add_argument("--ack-grace", type=float, default=20, help="open: wait this long after the last send")
    parser.add_argument("--no-replies", action="store_true")
    parser.add_argument("--idle", type=float, default=10, help="drain: give up after this long with no reply")
    parser.add_argument("--cap", type=float, default=60, help="drain: give up after this long in all")
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--reply-timeout", type=float, default=30)
    parser.add_argument("--text", default="")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--prime", type=int, default=0)
    parser.add_argument("--url", default="")
    parser.add_argument("--tokens-file", default="")
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--deadline", type=float, default=120, help="ws: stop opening sockets after this long")
    args = parser.parse_args()
    runner = {"open": run_open, "closed": run_closed, "sequential": run_sequential, "ws": run_ws}[args.mode]
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner_loop:
        result = runner_loop.run(runner(args))
    result["loadgen_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
