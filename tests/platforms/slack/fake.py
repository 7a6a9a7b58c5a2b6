"""The fake Slack API for the tests: a real HTTP server on 127.0.0.1 (``tests.fakes.server``)
speaking the platform's wire format, request builders that sign (and encrypt) callbacks as the
platform does, and the platform end of its long connection (``tests.fakes.connectors.FakeSocketServer``)."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from urllib.parse import parse_qs

from tests.fakes.connectors import FakeSocketServer
from tests.fakes.platforms import sample_json
from tests.fakes.server import FakeServer, RecordedRequest, Response


def install_slack(server: FakeServer) -> None:
    """``chat.postMessage``, ``chat.update`` and ``chat.postEphemeral`` as slack.com answers them."""
    counter = itertools.count(1)

    def post_message(req: RecordedRequest):
        data = req.json()
        return 200, {"ok": True, "channel": data["channel"], "ts": f"1731405999.{next(counter):06d}", "message": data}

    def update(req: RecordedRequest):
        data = req.json()
        return 200, {"ok": True, "channel": data["channel"], "ts": data["ts"], "text": data.get("text", "")}

    def ephemeral(req: RecordedRequest):
        return 200, {"ok": True, "message_ts": "1731406013.000100"}

    server.route("POST", "/api/chat.postMessage", post_message)
    server.route("POST", "/api/chat.update", update)
    server.route("POST", "/api/chat.postEphemeral", ephemeral)


class FakeSlackWorkspace:
    """``chat.postMessage``, ``chat.update`` and ``chat.delete`` for one workspace, keeping each
    message as the user sees it (its text, blocks and every version of its text) per conversation.

    Rate limits as this fake models Slack's: a conversation takes at most two posts or updates
    within any second (``chat.postMessage`` allows about one a second per conversation, with short
    bursts); one more is answered 429 ``ratelimited`` with ``Retry-After`` and counted in ``refused``.
    """

    RATE_WINDOW_S = 1.0
    RATE_BURST = 2

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.messages: dict[tuple[str, str], dict] = {}
        self.refused = 0
        self._calls: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        server.route("POST", "/api/chat.postMessage", self._post)
        server.route("POST", "/api/chat.update", self._update)
        server.route("POST", "/api/chat.delete", self._delete)

    def _flood(self, channel: str) -> Response | None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._calls.get(channel, []) if now - t < self.RATE_WINDOW_S]
            if len(recent) >= self.RATE_BURST:
                self.refused += 1
                self._calls[channel] = recent
                return Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
            self._calls[channel] = [*recent, now]
        return None

    def _post(self, req: RecordedRequest) -> Response:
        data = req.json()
        if refused := self._flood(data["channel"]):
            return refused
        ts = f"1731405999.{next(self._counter):06d}"
        message = {"ts": ts, "text": data.get("text", ""), "versions": [data.get("text", "")]}
        if data.get("blocks"):
            message["blocks"] = data["blocks"]
        self.messages[(data["channel"], ts)] = message
        return Response(200, {"ok": True, "channel": data["channel"], "ts": ts, "message": message})

    def _update(self, req: RecordedRequest) -> Response:
        data = req.json()
        message = self.messages.get((data.get("channel"), data.get("ts")))
        if message is None:
            return Response(200, {"ok": False, "error": "message_not_found"})
        if refused := self._flood(data["channel"]):
            return refused
        message["text"] = data.get("text", "")
        message["versions"].append(message["text"])
        if "blocks" in data:
            message["blocks"] = data["blocks"]
        return Response(200, {"ok": True, "channel": data["channel"], "ts": data["ts"], "text": message["text"]})

    def _delete(self, req: RecordedRequest) -> Response:
        data = req.json()
        if self.messages.pop((data.get("channel"), data.get("ts")), None) is None:
            return Response(200, {"ok": False, "error": "message_not_found"})
        return Response(200, {"ok": True, "channel": data["channel"], "ts": data["ts"]})

    def conversation(self, channel: str) -> list[dict]:
        """The bot's messages in ``channel`` as the user sees them now, oldest first."""
        return [m for (c, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1]) if c == channel]

    @property
    def posts(self) -> list[RecordedRequest]:
        return self.server.requests_to("/api/chat.postMessage")

    @property
    def updates(self) -> list[RecordedRequest]:
        return self.server.requests_to("/api/chat.update")


class SlackWebAPI:
    """``chat.postMessage`` and ``conversations.history`` / ``conversations.replies`` as slack.com
    answers them, with an outage: until ``outage_until`` (a ``time.monotonic()`` value) every post is
    answered ``500 {"ok": false, "error": "fatal_error"}`` without being kept, as Slack's edge does
    in an incident. Posts that were taken are kept with their metadata (the history the adapter
    reads before posting again), so ``texts()`` is exactly what users saw, duplicates included."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.outage_until = 0.0
        self.refused = 0
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        server.route("POST", "/api/chat.postMessage", self._post)
        server.route("POST", "/api/conversations.history", self._history)
        server.route("POST", "/api/conversations.replies", self._history)

    def outage(self, seconds: float) -> None:
        """Answer 500 to every post for the next ``seconds``."""
        self.outage_until = time.monotonic() + seconds

    def _post(self, req: RecordedRequest):
        if time.monotonic() < self.outage_until:
            with self._lock:
                self.refused += 1
            return 500, {"ok": False, "error": "fatal_error"}
        data = req.json()
        with self._lock:
            ts = f"1731405999.{next(self._ts):06d}"
            message = {"channel": data["channel"], "type": "message", "user": "U0BOT", "text": data["text"], "ts": ts}
            for field in ("thread_ts", "metadata"):
                if field in data:
                    message[field] = data[field]
            self.messages.append(message)
        return 200, {"ok": True, "channel": data["channel"], "ts": ts, "message": message}

    def _history(self, req: RecordedRequest):
        args = {k: v[0] for k, v in req.query.items()}
        if req.body:
            args.update({k: v[0] for k, v in parse_qs(req.body.decode()).items()})
        with self._lock:
            found = [
                m
                for m in self.messages
                if m["channel"] == args.get("channel") and (not args.get("ts") or m.get("thread_ts") == args["ts"])
            ]
        shown = [{k: v for k, v in m.items() if k != "channel"} for m in reversed(found)]
        return 200, {"ok": True, "messages": shown[: int(args.get("limit") or 100)], "has_more": False}

    def texts(self) -> list[str]:
        with self._lock:
            return [m["text"] for m in self.messages]


def slack_signed(body: bytes, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The ``X-Slack-Request-Timestamp`` / ``X-Slack-Signature`` headers Slack sends with ``body``."""
    import hashlib
    import hmac

    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slack_interaction(payload: dict) -> bytes:
    """The form body of an interactivity request: ``payload=<JSON>``, URL-encoded."""
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()


# --- the long connection ----------------------------------------------------------------------


SLACK_APP_TOKEN = "xapp-1-A0PNCHHK2-5550001-socketmodetesttoken0001"
SLACK_BOT_TOKEN = "xoxb-1111-2222-socketmodebottoken"


class FakeSlackSocketMode:
    def __init__(self, http: FakeServer, socket: FakeSocketServer) -> None:
        self.http, self.socket = http, socket
        self.tickets: list[str] = []
        http.route("POST", "/api/apps.connections.open", self._open)
        http.route("POST", "/api/chat.postMessage", self._post)
        http.route("POST", "/api/chat.update", lambda req: (200, {"ok": True, "channel": "", "ts": ""}))
        http.route("POST", "/api/chat.postEphemeral", lambda req: (200, {"ok": True, "message_ts": "1731406013.0001"}))
        self._ts = itertools.count(1)

    def _open(self, req: RecordedRequest) -> Response:
        if req.headers.get("Authorization") != f"Bearer {SLACK_APP_TOKEN}":
            return Response(200, {"ok": False, "error": "invalid_auth"})
        ticket = uuid.uuid4().hex
        self.tickets.append(ticket)
        return Response(200, {"ok": True, "url": f"{self.socket.url}/link/?ticket={ticket}&app_id=A0PNCHHK2"})

    def _post(self, req: RecordedRequest) -> Response:
        data = req.json() if req.body.startswith(b"{") else {}
        return Response(200, {"ok": True, "channel": data.get("channel", ""), "ts": f"1731405999.{next(self._ts):06d}"})

    @property
    def opens(self) -> list[RecordedRequest]:
        return self.http.requests_to("/api/apps.connections.open")

    @property
    def sent(self) -> list[RecordedRequest]:
        return self.http.requests_to("/api/chat.postMessage")

    @property
    def updates(self) -> list[RecordedRequest]:
        return self.http.requests_to("/api/chat.update")

    def acks(self, envelope_id: str) -> list[dict]:
        return self.socket.frames(lambda f: f.get("envelope_id") == envelope_id)


SLACK_HELLO = {
    "type": "hello",
    "num_connections": 1,
    "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
    "connection_info": {"app_id": "A0PNCHHK2"},
}


def slack_envelope(*, event_id: str, text: str, envelope_id: str = "", retry_attempt: int = 0) -> dict:
    """An ``events_api`` envelope around the direct-message sample (as Socket Mode delivers it)."""
    payload = sample_json("slack", "message_im.json")
    payload["event_id"] = event_id
    payload["event"]["text"] = text
    return {
        "envelope_id": envelope_id or str(uuid.uuid4()),
        "payload": payload,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
    }


def slack_rating_envelope(sent: dict, *, ts: str, token: str, thumb: str = "up", user: str = "U061F7AUR") -> dict:
    """The ``interactive`` envelope Socket Mode delivers when ``user`` clicks the rating button
    carrying ``token`` under the posted message ``sent`` (its ``chat.postMessage`` body; ``ts`` as
    Slack answered)."""
    payload = sample_json("slack", "block_actions.json")
    payload["user"]["id"] = user
    payload["container"].update(channel_id=sent["channel"], message_ts=ts)
    payload["channel"]["id"] = sent["channel"]
    payload["message"].update(ts=ts, text=sent["text"], blocks=sent.get("blocks") or [])
    payload["actions"][0].update(action_id=f"parley_rate_{thumb}", value=token)
    return {
        "envelope_id": str(uuid.uuid4()),
        "payload": payload,
        "type": "interactive",
        "accepts_response_payload": False,
    }
