"""The answer times a user feels in IM: time to the first visible text and to the complete answer.

    .venv/bin/python bench/im_latency.py [--messages 40] [--cold 3] [--timeout 1.0] [--platforms telegram,dingtalk,...]

Parley runs as the embedded default (``uvicorn config.asgi:application``: SQLite in a temporary
``PARLEY_VAR_DIR``, tasks on the in-process pool) on 127.0.0.1; this process holds the fakes — an
OpenAI-compatible model whose first token comes after 200 ms and 20 tokens over the next 400 ms,
and the platform APIs of ``tests/platforms/<name>/fake.py`` — so every time is on one clock: from
just before the webhook is posted to the arrival at the fake platform of the first request that
carries text ("first text") and of the one that carries the finished answer with its rating
buttons ("complete"). Messages are sent one at a time, each from a new chat.

Scenarios, each per platform: streaming on (the default), streaming off; a primary model that
hangs (the backup answers after the primary's ``--timeout``; budget = timeout + the backup's own
time + 0.5 s); a burst (3 messages in 1 s from one user → one answer, timed from the last
message); and cold starts: Parley restarted ``--cold`` times with its warm-up and as many without
(``PARLEY_WARMUP=0``), the first webhook after ``/readyz``
says ready against the later ones (ack and complete).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="parley-bench-im-")
for name in ("DATABASE_URL", "REDIS_URL"):
    os.environ.pop(name, None)
os.environ["PARLEY_VAR_DIR"] = TMP
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apps.bots.models import Bot, BotFallback  # noqa: E402
from apps.channels.models import Channel  # noqa: E402
from apps.llm.models import ModelConfig  # noqa: E402
from apps.tenants.models import Tenant  # noqa: E402
from tests.fakes.llm import FakeOpenAI  # noqa: E402
from tests.fakes.platforms import sample_json  # noqa: E402
from tests.fakes.server import FakeServer, RecordedRequest  # noqa: E402
from tests.platforms.conftest import DINGTALK_CREDENTIALS, FEISHU_CREDENTIALS  # noqa: E402
from tests.platforms.dingtalk.fake import FakeDingTalkCards, dingtalk_headers  # noqa: E402
from tests.platforms.feishu.fake import FakeFeishuMessages, feishu_event  # noqa: E402
from tests.platforms.slack.fake import FakeSlackWorkspace, slack_signed  # noqa: E402
from tests.platforms.telegram.fake import FakeTelegramBot  # noqa: E402

ANSWER = " ".join(f"word{i}" for i in range(1, 21))  # 20 pieces
FIRST_TOKEN_S, STREAM_S = 0.2, 0.4
TG_TOKEN = "7512345678:AAH-bench_token_0123456789abcdefghij"
TG_SECRET = "bench-Secret_Token-0123456789"
SLACK_SECRET = "b7c1e0d2f3a4958677a8b9c0d1e2f3a4"
SLACK_TOKEN = "xoxb-1111-2222-benchtoken"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p99 {pct(values, 99) * 1000:.0f} ms"


# --- the platforms: how a question is posted, and which fake requests carry text / the answer -------------


class Platform:
    name = ""
    key = ""

    def __init__(self) -> None:
        self.server = FakeServer().start()

    def credentials(self) -> dict:
        raise NotImplementedError

    def post(self, http: httpx.Client, base: str, key: str, n: int, text: str, user: int) -> httpx.Response:
        raise NotImplementedError

    def carries_text(self, req: RecordedRequest) -> bool:
        raise NotImplementedError

    def is_final(self, req: RecordedRequest) -> bool:
        raise NotImplementedError

    def requests_since(self, t0: float) -> list[RecordedRequest]:
        return [r for r in list(self.server.requests) if r.at >= t0]


class Telegram(Platform):
    name = "telegram"

    def __init__(self) -> None:
        super().__init__()
        FakeTelegramBot(self.server, token=TG_TOKEN)

    def credentials(self) -> dict:
        return {"bot_token": TG_TOKEN, "secret_token": TG_SECRET}

    def post(self, http, base, key, n, text, user):
        update = sample_json("telegram", "private_message.json")
        update["update_id"] = n
        update["message"]["message_id"] = n
        update["message"]["chat"]["id"] = update["message"]["from"]["id"] = user
        update["message"]["text"] = text
        return http.post(
            f"{base}/webhooks/telegram/{key}/",
            content=json.dumps(update),
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )

    def carries_text(self, req):
        return req.path.endswith(("/sendMessage", "/editMessageText"))

    def is_final(self, req):
        return self.carries_text(req) and bool(req.json().get("reply_markup"))


class Slack(Platform):
    name = "slack"

    def __init__(self) -> None:
        super().__init__()
        FakeSlackWorkspace(self.server)

    def credentials(self) -> dict:
        return {"signing_secret": SLACK_SECRET, "bot_token": SLACK_TOKEN}

    def post(self, http, base, key, n, text, user):
        event = sample_json("slack", "message_im.json")
        event["event_id"] = f"EvBench{n}"
        event["event"].update(
            {"text": text, "channel": f"D{user}", "user": f"U{user}", "ts": f"{1731405000 + n}.000100"}
        )
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", **slack_signed(body, SLACK_SECRET)}
        return http.post(f"{base}/webhooks/slack/{key}/", content=body, headers=headers)

    def carries_text(self, req):
        return req.path in ("/api/chat.postMessage", "/api/chat.update")

    def is_final(self, req):
        return self.carries_text(req) and any(b.get("type") == "actions" for b in req.json().get("blocks") or [])


class Feishu(Platform):
    name = "feishu"

    def __init__(self) -> None:
        super().__init__()
        FakeFeishuMessages(self.server)

    def credentials(self) -> dict:
        return dict(FEISHU_CREDENTIALS)

    def post(self, http, base, key, n, text, user):
        payload = sample_json("feishu", "im.message.receive_v1.p2p_text.json")
        payload["header"]["event_id"] = f"ev-bench-{n}"
        message = payload["event"]["message"]
        message.update({"content": json.dumps({"text": text}), "message_id": f"om_bench{n}", "chat_id": f"oc_{user}"})
        payload["event"]["sender"]["sender_id"]["open_id"] = f"ou_{user}"
        body, headers = feishu_event(payload, encrypt_key=FEISHU_CREDENTIALS["encrypt_key"])
        return http.post(f"{base}/webhooks/feishu/{key}/", content=body, headers=headers)

    def carries_text(self, req):
        return req.path.startswith("/open-apis/im/v1/messages") and req.method in ("POST", "PATCH")

    def is_final(self, req):
        if not self.carries_text(req):
            return False
        card = json.loads(req.json().get("content") or "{}")
        return any(e.get("tag") == "action" for e in card.get("elements", []))


class DingTalk(Platform):
    """A robot in a one-to-one chat, its channel set up with an AI card template: streamed answers
    are a card whose content is written by ``PUT /v1.0/card/streaming`` (the last with
    ``isFinalize``); with streaming off, one message through the question's session webhook."""

    name = "dingtalk"

    def __init__(self) -> None:
        super().__init__()
        FakeDingTalkCards(self.server)

    def credentials(self) -> dict:
        return {**DINGTALK_CREDENTIALS, "card_template_id": "parley-answer.schema"}

    def post(self, http, base, key, n, text, user):
        payload = sample_json("dingtalk", "text_single.json")
        payload.update(
            {
                "msgId": f"msgbench{n}",
                "conversationId": f"cidbench{user}",
                "senderStaffId": f"staff{user}",
                "senderId": f"$:LWCP_v1:$bench{user}",
                "sessionWebhook": f"{self.server.url}/robot/sendBySession?session=bench{user}",
                "sessionWebhookExpiredTime": int(time.time() * 1000) + 3_600_000,
                "createAt": int(time.time() * 1000),
            }
        )
        payload["text"]["content"] = text
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = dingtalk_headers(DINGTALK_CREDENTIALS["client_secret"])
        return http.post(f"{base}/webhooks/dingtalk/{key}/", content=body, headers=headers)

    def carries_text(self, req):
        if req.path.startswith("/robot/sendBySession"):
            return True
        return req.path == "/v1.0/card/streaming" and bool(req.json().get("content"))

    def is_final(self, req):
        if req.path.startswith("/robot/sendBySession"):
            return True
        return req.path == "/v1.0/card/streaming" and bool(req.json().get("isFinalize"))


class Web(Platform):
    """The web chat: a socket per question (a new visitor each time); "first text" is the first
    ``token`` frame, "complete" the ``message`` frame. There is no webhook: "ack" is the socket's
    ``history`` frame after connecting."""

    name = "web"
    origin = "https://shop.example.com"

    def credentials(self) -> dict:
        return {}

    def ask(self, base: str, channel: Channel, text: str, *, timeout: float = 20):
        from websockets.sync.client import connect

        from apps.channels.platforms.web.visitor import visitor_token_issue

        token = visitor_token_issue(channel=channel).token
        url = base.replace("http://", "ws://") + f"/ws/chat/{channel.key}/"
        t0 = time.monotonic()
        with connect(url, origin=self.origin, subprotocols=["parley.v1", f"parley.auth.{token}"]) as ws:
            json.loads(ws.recv(timeout))  # history
            ack = time.monotonic() - t0
            t0 = time.monotonic()
            ws.send(json.dumps({"type": "message", "id": f"bench-{time.monotonic_ns()}", "text": text}))
            first = None
            deadline = t0 + timeout
            while time.monotonic() < deadline:
                frame = json.loads(ws.recv(max(0.01, deadline - time.monotonic())))
                if frame.get("type") == "token" and first is None:
                    first = time.monotonic() - t0
                if frame.get("type") == "message":
                    done = time.monotonic() - t0
                    try:  # a second answer would show up here
                        extra = json.loads(ws.recv(0.15)).get("type") == "message"
                    except TimeoutError:
                        extra = False
                    return ack, first if first is not None else done, done, int(extra)
        return None


PLATFORMS = {p.name: p for p in (Telegram, Slack, Feishu, DingTalk, Web)}


# --- Parley ---------------------------------------------------------------------------------------------


class Parley:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        log = ROOT / "var" / "bench" / "im_latency.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log, "ab")  # noqa: SIM115 - the server's output, for as long as it runs

    def start(self) -> float:
        """Start uvicorn; returns the seconds until /readyz answered 200."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=os.environ.copy(), stdout=self.log, stderr=self.log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"Parley exited; see {self.log.name}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise SystemExit("Parley did not become ready within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


# --- one message ------------------------------------------------------------------------------------------

_n = iter(range(10_000, 10**9))


def one(http, parley, platform: Platform, key: str, text: str, *, user: int | None = None, timeout: float = 20):
    """Post one question; return (ack s, first text s, complete s, start time) or None when no
    answer came within ``timeout``."""
    n = next(_n)
    user = user or 500_000 + n
    t0 = time.monotonic()
    response = platform.post(http, parley.base, key, n, text, user)
    ack = time.monotonic() - t0
    if response.status_code != 200:
        raise SystemExit(f"{platform.name} webhook answered {response.status_code}: {response.text[:200]}")
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        seen = platform.requests_since(t0)
        final = [r for r in seen if platform.is_final(r)]
        if final:
            first = min(r.at for r in seen if platform.carries_text(r))
            return ack, first - t0, final[0].at - t0, t0
        time.sleep(0.005)
    return None


def model_behaviour(llm: FakeOpenAI, *, streaming: bool) -> None:
    """The fake model: streamed, the first token after 200 ms and 20 pieces over 400 ms; asked for a
    whole answer (a channel that does not stream), the same answer after the same 600 ms."""
    if streaming:
        llm.set(text=ANSWER, first_token_delay=FIRST_TOKEN_S, token_delay=STREAM_S / 19)
    else:
        llm.set(text=ANSWER, delay=FIRST_TOKEN_S + STREAM_S)


def fresh_hung_primary(tenant, hung_bot, hung, timeout: float) -> None:
    """A new hung primary for the next question: its breaker is closed, so the wait is its timeout."""
    hung_bot.model = ModelConfig.objects.create(
        tenant=tenant,
        name=f"hung-{next(_n)}",
        provider="openai",
        endpoint=hung.url,
        api_key="k",
        model="m",
        timeout_s=timeout,
    )
    hung_bot.save(update_fields=["model"])


def web_cases(parley, web: Web, keys, args, tenant, hung_bot, hung, llm) -> dict:
    row: dict = {}
    for label, slug, streaming in (("streaming", "bench", True), ("off", "bench", False), ("hung", "bench-hung", True)):
        channel = Channel.objects.get(key=keys[("web", slug, streaming)])
        acks, firsts, completes, missing, extra = [], [], [], 0, 0
        model_behaviour(llm, streaming=streaming)
        for i in range(args.messages if label != "hung" else max(5, args.messages // 4)):
            if label == "hung":
                fresh_hung_primary(tenant, hung_bot, hung, args.timeout)
            got = web.ask(parley.base, channel, f"When are you open? (web {i} {next(_n)})")
            if got is None:
                missing += 1
                continue
            acks.append(got[0])
            firsts.append(got[1])
            completes.append(got[2])
            extra += got[3]
        row[label] = {"ack": acks, "first": firsts, "complete": completes, "missing": missing, "duplicated": extra}
    row["burst"] = []
    return row


def run(args) -> dict:
    call_command("migrate", verbosity=0)
    llm = FakeOpenAI().start()
    model_behaviour(llm, streaming=True)
    hung = FakeOpenAI().start()
    hung.set(first_token_delay=3600, delay=3600)
    platforms = [PLATFORMS[name]() for name in args.platforms.split(",")]
    if isinstance(platforms[0], Web):
        raise SystemExit("--platforms: start with an IM platform (the cold starts are timed through its webhook)")
    tenant = Tenant.objects.create(slug="bench-im", name="Bench IM")
    model = ModelConfig.objects.create(
        tenant=tenant, name="model", provider="openai", endpoint=llm.url, api_key="k", model="m", timeout_s=10
    )
    hung_model = ModelConfig.objects.create(
        tenant=tenant, name="hung", provider="openai", endpoint=hung.url, api_key="k", model="m", timeout_s=args.timeout
    )
    # The answer cache off: every question goes to the model (repeated questions would be cache hits).
    bot = Bot.objects.create(tenant=tenant, slug="bench", name="Bench", model=model, cache_answers=False)
    hung_bot = Bot.objects.create(
        tenant=tenant, slug="bench-hung", name="Bench hung", model=hung_model, cache_answers=False
    )
    BotFallback.objects.create(bot=hung_bot, model=model, position=0)
    keys = {}
    for p in platforms:
        for b in (bot, hung_bot):
            for streaming in (True, False):
                key = f"{p.name}-{b.slug}-{'on' if streaming else 'off'}"
                Channel.objects.create(
                    bot=b,
                    platform=p.name,
                    key=key,
                    credentials=p.credentials(),
                    api_base=p.server.url,
                    streaming=streaming,
                    allowed_origins=Web.origin,
                )
                keys[(p.name, b.slug, streaming)] = key

    results: dict = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}, "platforms": {}}
    parley = Parley()
    http = httpx.Client(timeout=30)
    try:
        # Cold starts: the first webhook after /readyz says ready, against the ones after it; with
        # the warm-up (apps/runtime/warmup.py) and, for comparison, without it.
        # Each start's first webhook is paired with the next three of the same start (same process,
        # same moment of the machine), so the gap is not the machine's drift between starts.
        def figures_dict() -> dict:
            return {"ready_s": [], "first_ack": [], "first_complete": [], "later_ack": [], "later_complete": []}

        cold, cold_unwarmed = figures_dict(), figures_dict()
        for i in range(args.cold * 2):
            figures = cold if i % 2 == 0 else cold_unwarmed
            os.environ["PARLEY_WARMUP"] = "1" if i % 2 == 0 else "0"
            figures["ready_s"].append(parley.start())
            for j in range(4):
                got = one(http, parley, platforms[0], keys[(platforms[0].name, "bench", True)], f"cold {next(_n)}")
                if got:
                    figures["first_ack" if j == 0 else "later_ack"].append(got[0])
                    figures["first_complete" if j == 0 else "later_complete"].append(got[2])
                time.sleep(0.2)
            parley.stop()
        os.environ["PARLEY_WARMUP"] = "1"
        parley.start()
        for _ in range(3):  # a few to settle, as any running server has had
            one(http, parley, platforms[0], keys[(platforms[0].name, "bench", True)], f"warm-up {next(_n)}")
        for p in platforms:
            if isinstance(p, Web):
                results["platforms"]["web"] = web_cases(parley, p, keys, args, tenant, hung_bot, hung, llm)
                continue
            row: dict = {}
            for label, slug, streaming in (
                ("streaming", "bench", True),
                ("off", "bench", False),
                ("hung", "bench-hung", True),
            ):
                acks, firsts, completes, missing, extra = [], [], [], 0, 0
                model_behaviour(llm, streaming=streaming)
                for i in range(args.messages if label != "hung" else max(5, args.messages // 4)):
                    if label == "hung":
                        fresh_hung_primary(tenant, hung_bot, hung, args.timeout)
                    # A new question each time: the answer cache must not answer it.
                    got = one(http, parley, p, keys[(p.name, slug, streaming)], f"When are you open? ({i})")
                    if got is None:
                        missing += 1
                        continue
                    acks.append(got[0])
                    firsts.append(got[1])
                    completes.append(got[2])
                    time.sleep(0.15)  # a second answer would show up here
                    extra += len([r for r in p.requests_since(got[3]) if p.is_final(r)]) - 1
                row[label] = {
                    "ack": acks,
                    "first": firsts,
                    "complete": completes,
                    "missing": missing,
                    "duplicated": extra,
                }
            # The burst: 3 messages in 1 s from one user, one answer.
            bursts = []
            for _ in range(max(3, args.messages // 8)):
                user = 900_000 + next(_n)
                t0 = time.monotonic()
                for i, text in enumerate(("Hi,", "about my order", f"when does it ship? ({user})")):
                    if i:
                        time.sleep(0.45)
                    last = time.monotonic()
                    p.post(http, parley.base, keys[(p.name, "bench", True)], next(_n), text, user)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not any(p.is_final(r) for r in p.requests_since(last)):
                    time.sleep(0.01)
                time.sleep(1.5)
                finals = [r for r in p.requests_since(t0) if p.is_final(r)]
                bursts.append(
                    {"answers": len(finals), "complete_after_last": (finals[-1].at - last) if finals else None}
                )
            row["burst"] = bursts
            results["platforms"][p.name] = row
        results["cold"] = cold
        results["cold_unwarmed"] = cold_unwarmed
        steady = results["platforms"][platforms[0].name]["streaming"]
        results["steady"] = {"ack": steady["ack"], "complete": steady["complete"]}
        results["machine"]["load_after"] = os.getloadavg()
        results["model"] = {"first_token_s": FIRST_TOKEN_S, "stream_s": STREAM_S, "hung_timeout_s": args.timeout}
    finally:
        parley.stop()
        http.close()
        llm.stop()
        hung.stop()
        for p in platforms:
            p.server.stop()
    return results


def report(r: dict) -> None:
    m = r["model"]
    print(f"\nIM answer times — embedded default, {r['machine']['cpus']} CPUs, load average "
          f"{r['machine']['load_before'][0]:.1f} before / {r['machine']['load_after'][0]:.1f} after")  # fmt: skip
    print(f"model: first token {m['first_token_s'] * 1000:.0f} ms, 20 tokens over {m['stream_s'] * 1000:.0f} ms; "
          f"hung primary abandoned after {m['hung_timeout_s']:g} s")  # fmt: skip
    print("\n| platform | case | webhook ack | first text | complete answer | lost / duplicated |")
    print("|---|---|---|---|---|---|")
    for name, row in r["platforms"].items():
        for label in ("streaming", "off", "hung"):
            c = row[label]
            times = f"{ms(c['ack'])} | {ms(c['first'])} | {ms(c['complete'])}"
            print(f"| {name} | {label} | {times} | {c['missing']} / {c['duplicated']} |")
        if not row["burst"]:
            continue
        answers = [b["answers"] for b in row["burst"]]
        after = [b["complete_after_last"] for b in row["burst"] if b["complete_after_last"] is not None]
        print(f"| {name} | burst of 3 in 1 s | | | {ms(after)} after the last message | answers per burst: {answers} |")
    first = next(iter(r["platforms"]))
    print(f"\nfirst webhook after a start ({first}, streaming), against the later ones:")
    for label, c in (("warm-up on (shipped)", r["cold"]), ("warm-up off (PARLEY_WARMUP=0)", r["cold_unwarmed"])):
        print(f"- {label}, {len(c['ready_s'])}×: /readyz ready after {ms(c['ready_s'])}; first webhook: "
              f"ack {ms(c['first_ack'])}, complete {ms(c['first_complete'])}; the next three of the same "
              f"starts: ack {ms(c['later_ack'])}, complete {ms(c['later_complete'])}")  # fmt: skip
    s = r["steady"]
    print(f"- later webhooks: ack {ms(s['ack'])}, complete {ms(s['complete'])}")
    budget = m["hung_timeout_s"] + m["first_token_s"] + m["stream_s"] + 0.5
    print(f"hung-primary budget (timeout + backup's time + 0.5 s): {budget * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=40, help="messages per platform and case")
    parser.add_argument("--cold", type=int, default=3, help="cold starts to time")
    parser.add_argument("--timeout", type=float, default=1.0, help="the hung primary's timeout (s)")
    parser.add_argument("--platforms", default="telegram,slack,feishu,dingtalk,web")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args()
    try:
        results = run(args)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
