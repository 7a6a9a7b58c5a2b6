"""`make chaos`: Parley's production shape on 127.0.0.1 put through the faults of docs/reliability.md,
counting for each what a user would notice — replies lost, replies sent twice, how late they came
— and how long Parley took to recover.

    .venv/bin/python bench/chaos.py            # every fault, production timings (≈ 25 min)
    .venv/bin/python bench/chaos.py --fast     # the CI cases: scaled-down timings (≈ 3 min)
    .venv/bin/python bench/chaos.py --cases worker_kill,pg_killed

What it starts, all its own and all stopped again (on success, an error or Ctrl-C), so nothing
shared is touched:

* PostgreSQL: a fresh cluster (``initdb`` as the ``postgres`` user when run as root) in
  ``var/chaos/pg`` on a free port; Redis: ``redis-server`` on a free port, no persistence;
* Parley: ``gunicorn config.asgi:application -k uvicorn_worker.UvicornWorker``, a Celery worker
  (threads) and Celery beat, with the production settings (``DATABASE_URL`` and ``REDIS_URL`` set)
  — in ``--fast`` mode with the lease, sweeps and delivery backoff scaled down through their
  settings;
* the outside world, in this process: the fake Slack Web API (``tests/platforms/slack/fake.py``,
  its outages switched on and off from here) and the fake OpenAI-compatible model
  (``tests/fakes/llm.py``). The channel does not stream answers (``Channel.streaming`` off): each
  reply is one ``chat.postMessage``, so a reply is counted when the platform took it whole.

Each case sends signed Slack Events API webhooks, one user and direct-message chat per message (a
reply is known by the chat it goes to; each asks its own question, so no two share a model call),
retries a webhook that was not answered 2xx the way Slack does (sooner: after 1 s, up to 30 times),
injects its fault, waits until every message is answered or the case's deadline passes, and
counts. Exit status 1 when any case lost or duplicated a reply.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import procs  # noqa: E402

OUT = ROOT / "var" / "chaos"
LOGS = OUT / "logs"
BIN = Path(sys.executable).parent
PY = sys.executable
SECRET = secrets.token_hex(16)
QUESTION = "Where is my parcel?"
ANSWER = "Your parcel ships tomorrow."


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- timings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    """Production defaults, or scaled down for --fast (settings, not code, are what change)."""

    lease: float = 15.0
    sweep: float = 5.0
    grace: float = 30.0
    backoff: float = 5.0
    backoff_max: float = 300.0
    delivery_sweep: float = 5.0
    messages: int = 20
    platform_outages: tuple[float, ...] = (60.0, 600.0)
    outage: float = 20.0  # Redis / PostgreSQL / model away this long
    deadline: float = 240.0  # after the fault ends, a case gives up waiting this long

    def env(self) -> dict[str, str]:
        return {
            "PARLEY_INBOUND_LEASE_SECONDS": str(self.lease),
            "PARLEY_SWEEP_INTERVAL": str(self.sweep),
            "PARLEY_RECEIVED_GRACE_SECONDS": str(self.grace),
            "PARLEY_DELIVERY_BACKOFF_SECONDS": str(self.backoff),
            "PARLEY_DELIVERY_BACKOFF_MAX_SECONDS": str(self.backoff_max),
            "PARLEY_DELIVERY_SWEEP_INTERVAL": str(self.delivery_sweep),
        }


FULL = Timings()
FAST = Timings(
    lease=5.0,
    sweep=1.0,
    grace=5.0,
    backoff=0.5,
    backoff_max=2.0,
    delivery_sweep=1.0,
    messages=10,
    platform_outages=(10.0,),
    outage=6.0,
    deadline=90.0,
)


# --- the services: PostgreSQL and Redis of our own ----------------------------------------------


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _pg_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise SystemExit("chaos: PostgreSQL's initdb not found (apt-get install postgresql)")
    return versions[-1].parent


class Postgres:
    def __init__(self) -> None:
        self.dir = OUT / "pg"
        self.port = procs.free_port()
        self.proc: procs.Proc | None = None

    def init(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        initdb = [str(_pg_bin() / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres"]
        subprocess.run(_as_postgres([*initdb, "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)

    def start(self) -> None:
        argv = _as_postgres(
            [
                *[str(_pg_bin() / "postgres"), "-D", str(self.dir / "data"), "-p", str(self.port), "-k", str(self.dir)],
                *["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            ]
        )
        self.proc = procs.start("postgres", argv, env=dict(os.environ), log_dir=LOGS, cwd=OUT)
        procs.wait_until(lambda: port_open(self.port), timeout=30, what="PostgreSQL", proc=self.proc)
        time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once: a crash."""
        os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL)
        self.proc.popen.wait(timeout=10)
        procs.stop(self.proc)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"


class Redis:
    def __init__(self) -> None:
        self.port = procs.free_port()
        self.proc: procs.Proc | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = procs.start("redis", argv, env=dict(os.environ), log_dir=LOGS, cwd=OUT)
        procs.wait_until(lambda: port_open(self.port), timeout=20, what="Redis", proc=self.proc)

    def kill(self) -> None:
        os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL)
        self.proc.popen.wait(timeout=10)
        procs.stop(self.proc)

    def freeze(self) -> None:
        os.killpg(os.getpgid(self.proc.pid), signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(os.getpgid(self.proc.pid), signal.SIGCONT)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# --- the outside world: fake Slack and a fake model ---------------------------------------------


class Slack:
    """The fake Slack Web API, with the time each reply arrived (by chat)."""

    def __init__(self) -> None:
        from tests.fakes.server import FakeServer
        from tests.platforms.slack.fake import SlackWebAPI

        self.server = FakeServer()
        self.api = SlackWebAPI(self.server)
        self.arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        post = self.api._post

        def timed(req):
            status, body = post(req)
            if status == 200:
                with self._lock:
                    self.arrivals.setdefault(body["channel"], []).append(time.monotonic())
            return status, body

        self.server.route("POST", "/api/chat.postMessage", timed)  # later routes win

    def replies(self, chat: str) -> list[float]:
        with self._lock:
            return list(self.arrivals.get(chat, []))


def _fake_model():
    from tests.fakes.llm import FakeOpenAI

    model = FakeOpenAI()
    model.set(text=ANSWER)
    return model


# --- Parley -----------------------------------------------------------------------------------


class Parley:
    def __init__(self, pg: Postgres, redis: Redis, timings: Timings, web_port: int) -> None:
        self.web_port = web_port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "PROMETHEUS_", "DB_"))}
        self.env.update(
            {
                "DATABASE_URL": pg.url("parley_chaos"),
                "REDIS_URL": redis.url,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "SECRET_KEY": "chaos-" + secrets.token_urlsafe(50),
                "PARLEY_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "DEBUG": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
                "PARLEY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",  # the fakes live on loopback
                "PARLEY_METRICS_TOKEN": secrets.token_urlsafe(16),
                "PLATFORM_API_TIMEOUT": "3",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT),
                "PARLEY_VAR_DIR": str(OUT / "var"),
                "DB_POOL_MAX_SIZE": "12",
                **timings.env(),
            }
        )
        self.web: procs.Proc | None = None
        self.worker: procs.Proc | None = None
        self.beat: procs.Proc | None = None
        self._workers = 0

    def manage(self, *args: str) -> str:
        res = subprocess.run([PY, "manage.py", *args], env=self.env, cwd=ROOT, capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
        return res.stdout

    def start_web(self) -> None:
        argv = [str(BIN / "gunicorn"), "config.asgi:application", "-k", "uvicorn_worker.UvicornWorker"]
        argv += ["-w", "1", "-b", f"127.0.0.1:{self.web_port}", "--timeout", "60", "--graceful-timeout", "3"]
        self.web = procs.start("web", argv, env=self.env, log_dir=LOGS, cwd=ROOT)
        procs.wait_until(lambda: port_open(self.web_port), timeout=60, what="gunicorn", proc=self.web)

    def start_worker(self) -> None:
        self._workers += 1
        argv = [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "-P",
            "threads",
            "-c",
            "16",
            "-Q",
            "default,llm,webhooks",
        ]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
        argv += ["-n", f"chaos{self._workers}@%h"]
        self.worker = procs.start(f"worker{self._workers}", argv, env=self.env, log_dir=LOGS, cwd=ROOT)
        procs.wait_until(
            lambda: "ready" in self.worker.log_path.read_text(errors="replace"),
            timeout=60,
            what="the Celery worker",
            proc=self.worker,
        )

    def kill_worker(self) -> None:
        os.killpg(os.getpgid(self.worker.pid), signal.SIGKILL)
        self.worker.popen.wait(timeout=10)
        procs.stop(self.worker)

    def start_beat(self) -> None:
        argv = [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-l",
            "INFO",
            "-s",
            str(OUT / "beat-schedule"),
            "--pidfile=",
        ]
        self.beat = procs.start("beat", argv, env=self.env, log_dir=LOGS, cwd=ROOT)


def seed(parley: Parley, slack_url: str, model_url: str) -> None:
    script = f"""
from apps.bots.models import Bot
from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from apps.tenants.models import Tenant
tenant = Tenant.objects.create(slug="chaos", name="Chaos Corp")
model = ModelConfig.objects.create(tenant=tenant, name="primary", provider="openai", endpoint={model_url!r},
    api_key="chaos-key", model="chaos-model", max_tokens=64, timeout_s=5)
bot = Bot.objects.create(tenant=tenant, slug="main", name="Chaos", model=model, merge_window_ms=0,
    rate_limit_per_second=100000, user_rate_limit_per_minute=100000, feedback_links=False)
Channel.objects.create(bot=bot, platform="slack", key="chaos-slack", api_base={slack_url!r}, streaming=False,
    credentials={{"signing_secret": {SECRET!r}, "bot_token": "xoxb-chaos", "rating_buttons": "off"}})
"""
    parley.manage("shell", "-c", script)


# --- the platform's side: signed webhooks, retried like Slack -----------------------------------


@dataclass
class Sent:
    chat: str
    first_at: float = 0.0  # first attempt
    acked_at: float = 0.0  # the attempt answered 2xx (0: never)
    ack_seconds: list[float] = field(default_factory=list)  # every attempt's answer time
    statuses: list[int] = field(default_factory=list)


class Platform:
    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self.client = httpx.Client(timeout=30)
        self.pool = ThreadPoolExecutor(max_workers=16)

    def _body(self, event_id: str, chat: str, user: str) -> bytes:
        payload = {
            "type": "event_callback",
            "team_id": "T0CHAOS",
            "api_app_id": "A0CHAOS",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": chat,
                "user": user,
                "text": f"{QUESTION} (order {chat})",
                "ts": f"{time.time():.6f}",
            },
        }
        return json.dumps(payload).encode()

    def _post(self, body: bytes, retry: int) -> tuple[int, float]:
        stamp = str(int(time.time()))
        digest = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp}
        headers["X-Slack-Signature"] = f"v0={digest}"
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
        started = time.monotonic()
        try:
            status = self.client.post(
                f"{self.url}/webhooks/slack/chaos-slack/", content=body, headers=headers
            ).status_code
        except Exception:
            status = 0
        return status, time.monotonic() - started

    def deliver(self, sent: Sent, event_id: str, *, copies: int = 1) -> None:
        """Deliver one event until it is acknowledged (retried after 1 s, 30 times at most); ``copies``
        sends it that many times in all (a platform's redelivery storm)."""
        body = self._body(event_id, sent.chat, "U" + sent.chat[1:])
        sent.first_at = time.monotonic()
        attempt = 0
        while attempt < 30:
            status, took = self._post(body, attempt)
            sent.statuses.append(status)
            sent.ack_seconds.append(took)
            if 200 <= status < 300:
                sent.acked_at = sent.acked_at or time.monotonic()
                break
            attempt += 1
            time.sleep(1.0)
        for n in range(1, copies):
            self._post(body, attempt + n)

    def send(self, prefix: str, count: int, *, copies: int = 1, spacing: float = 0.0) -> list[tuple[Sent, object]]:
        out = []
        for i in range(count):
            sent = Sent(chat=f"D{prefix}{i:04d}")
            out.append((sent, self.pool.submit(self.deliver, sent, f"Ev{prefix}{i:04d}", copies=copies)))
            if spacing:
                time.sleep(spacing)
        return out


# --- cases --------------------------------------------------------------------------------------


@dataclass
class Result:
    case: str
    messages: int
    lost: int
    duplicated: int
    refused: int  # webhook attempts not answered 2xx (the platform retried them)
    ack_p50: float
    ack_p99: float
    ack_max: float
    late_p50: float
    late_p99: float
    late_max: float
    recovery: float  # from the fault's end to the last reply (s); 0 when nothing waited on it
    notes: str = ""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Chaos:
    def __init__(self, timings: Timings, parley: Parley, slack: Slack, model, redis: Redis, pg: Postgres) -> None:
        self.t, self.parley, self.slack, self.model, self.redis, self.pg = timings, parley, slack, model, redis, pg
        self.platform = Platform(f"http://127.0.0.1:{parley.web_port}")

    def _wait(self, batch: list[tuple[Sent, object]], deadline: float) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if all(f.done() for _, f in batch) and all(self.slack.replies(s.chat) for s, _ in batch):
                break
            time.sleep(0.25)
        # Anything sent twice shows itself after a few more sweeps: watch a little longer.
        time.sleep(max(2.0, 2 * self.t.delivery_sweep))

    def _result(self, case: str, batch: list[tuple[Sent, object]], fault_end: float, notes: str = "") -> Result:
        lost = dup = refused = 0
        acks, late, last = [], [], 0.0
        for sent, _ in batch:
            replies = self.slack.replies(sent.chat)
            lost += not replies
            dup += max(0, len(replies) - 1)
            refused += sum(1 for s in sent.statuses if not 200 <= s < 300)
            acks += sent.ack_seconds
            if replies:
                late.append(replies[0] - sent.first_at)
                last = max(last, replies[0])
        return Result(
            case=case,
            messages=len(batch),
            lost=lost,
            duplicated=dup,
            refused=refused,
            ack_p50=_pct(acks, 0.5),
            ack_p99=_pct(acks, 0.99),
            ack_max=max(acks, default=0.0),
            late_p50=_pct(late, 0.5),
            late_p99=_pct(late, 0.99),
            late_max=max(late, default=0.0),
            recovery=max(0.0, last - fault_end) if fault_end else 0.0,
            notes=notes,
        )

    # Each case: send, fault, recover, count.

    def baseline(self) -> Result:
        batch = self.platform.send("base", self.t.messages)
        self._wait(batch, self.t.deadline)
        return self._result("baseline (no fault)", batch, 0.0)

    def worker_kill(self) -> Result:
        """Two workers; the one holding the answers in flight is SIGKILLed and not restarted: the
        other takes its messages over once their claims expire (no renewal) and the sweeper runs."""
        doomed = self.parley.worker
        self.parley.start_worker()  # the survivor
        survivor = self.parley.worker
        self.parley.worker = doomed
        self.model.set(text=ANSWER, delay=4.0)  # every answer is in flight when the worker dies
        batch = self.platform.send("wkill", self.t.messages)
        time.sleep(2.0)
        self.parley.kill_worker()
        killed = time.monotonic()
        self.parley.worker = survivor
        self.model.set(text=ANSWER, delay=0.0)
        self._wait(batch, self.t.deadline)
        return self._result("worker SIGKILL mid-answer", batch, killed, "recovery counted from the kill")

    def redis_killed(self) -> Result:
        first = self.platform.send("rkill", self.t.messages // 2, spacing=0.05)
        time.sleep(0.5)
        self.redis.kill()
        killed = time.monotonic()
        second = self.platform.send("rkill2", self.t.messages - len(first), spacing=self.t.outage / self.t.messages)
        time.sleep(max(0.0, self.t.outage - (time.monotonic() - killed)))
        self.redis.start()
        back = time.monotonic()
        batch = first + second
        self._wait(batch, self.t.deadline)
        return self._result("Redis killed (restarted empty)", batch, back)

    def redis_frozen(self) -> Result:
        self.redis.freeze()
        frozen = time.monotonic()
        batch = self.platform.send("rfrz", self.t.messages, spacing=self.t.outage / self.t.messages)
        time.sleep(max(0.0, self.t.outage - (time.monotonic() - frozen)))
        self.redis.thaw()
        back = time.monotonic()
        self._wait(batch, self.t.deadline)
        return self._result("Redis frozen (SIGSTOP)", batch, back)

    def pg_killed(self) -> Result:
        first = self.platform.send("pgk", self.t.messages // 2, spacing=0.05)
        time.sleep(0.3)
        self.pg.kill()
        killed = time.monotonic()
        second = self.platform.send("pgk2", self.t.messages - len(first), spacing=self.t.outage / self.t.messages)
        time.sleep(max(0.0, self.t.outage - (time.monotonic() - killed)))
        self.pg.start()
        back = time.monotonic()
        batch = first + second
        self._wait(batch, self.t.deadline)
        return self._result("PostgreSQL killed", batch, back, "webhooks answered 503 meanwhile; Slack retries")

    def platform_5xx(self, seconds: float) -> Result:
        self.slack.api.outage(seconds)
        batch = self.platform.send(f"p5xx{int(seconds)}", self.t.messages, spacing=0.1)
        end = time.monotonic() + seconds
        # After the outage a reply waits out its current backoff (at most the cap, +10 % jitter).
        self._wait(batch, seconds + 1.1 * self.t.backoff_max + self.t.deadline)
        return self._result(f"platform API 500 for {seconds:.0f} s", batch, end)

    def model_down(self) -> Result:
        self.model.set(status=503, error_message="overloaded")
        batch = self.platform.send("llm", self.t.messages, spacing=0.1)
        self._wait(batch, self.t.deadline)
        self.model.set(text=ANSWER)
        notes = "each user told once that no answer could be made (the bot's failure text)"
        return self._result("model down (503)", batch, 0.0, notes)

    def redelivery(self) -> Result:
        batch = self.platform.send("redel", self.t.messages, copies=5)
        self._wait(batch, self.t.deadline)
        return self._result("5x redelivery burst", batch, 0.0)


CASES: dict[str, Callable[[Chaos], list[Result]]] = {
    "baseline": lambda c: [c.baseline()],
    "worker_kill": lambda c: [c.worker_kill()],
    "redis_killed": lambda c: [c.redis_killed()],
    "redis_frozen": lambda c: [c.redis_frozen()],
    "pg_killed": lambda c: [c.pg_killed()],
    "platform_5xx": lambda c: [c.platform_5xx(s) for s in c.t.platform_outages],
    "model_down": lambda c: [c.model_down()],
    "redelivery": lambda c: [c.redelivery()],
}


def table(results: list[Result]) -> str:
    lines = [
        "| fault | msgs | lost | dup | acks not 2xx | ack p50 / p99 / max (s) | reply p50 / p99 / max (s) "
        "| recovery (s) |",
        "|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in results:
        recovery = f"{r.recovery:.1f}" if r.recovery else "–"
        lines.append(
            f"| {r.case} | {r.messages} | {r.lost} | {r.duplicated} | {r.refused} | "
            f"{r.ack_p50:.3f} / {r.ack_p99:.3f} / {r.ack_max:.3f} | "
            f"{r.late_p50:.1f} / {r.late_p99:.1f} / {r.late_max:.1f} | {recovery} |"
        )
    return "\n".join(lines)


def write_docs(results: list[Result], *, fast: bool, elapsed: float) -> None:
    """Replace this mode's table between the chaos markers of docs/reliability.md."""
    path = ROOT / "docs" / "reliability.md"
    text = path.read_text()
    mode = "fast" if fast else "full"
    begin, end = f"<!-- chaos:{mode}:begin -->", f"<!-- chaos:{mode}:end -->"
    if begin not in text or end not in text:
        log(f"docs/reliability.md has no {begin} … {end} markers; not written")
        return
    timings = FAST if fast else FULL
    heading = (
        f"`{'make chaos CHAOS_ARGS=--fast' if fast else 'make chaos'}` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}, {elapsed:.0f} s in all; lease {timings.lease:g} s, sweeps every "
        f"{timings.sweep:g} s, delivery backoff {timings.backoff:g}–{timings.backoff_max:g} s, "
        f"{timings.messages} messages per case."
    )
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{heading}\n\n{table(results)}\n{end}{tail}")
    log("docs/reliability.md written")


def main() -> int:
    global OUT, LOGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="the CI cases with scaled-down timings")
    parser.add_argument("--cases", default="", help=f"comma list of: {', '.join(CASES)}")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/reliability.md")
    parser.add_argument("--out", default=str(ROOT / "var" / "chaos"), help="working directory, emptied first")
    args = parser.parse_args()
    timings = FAST if args.fast else FULL
    names = [n for n in args.cases.split(",") if n] or list(CASES)
    unknown = set(names) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    OUT = Path(args.out).resolve()
    LOGS = OUT / "logs"
    procs.install_signal_handlers()
    started = time.monotonic()
    if OUT.exists():
        shutil.rmtree(OUT)
    LOGS.mkdir(parents=True)
    os.chmod(OUT, 0o755)
    results: list[Result] = []
    model = slack = None
    try:
        log(f"{'fast' if args.fast else 'full'} run: {', '.join(names)}")
        pg, redis = Postgres(), Redis()
        pg.init()
        pg.start()
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "parley_chaos"], check=True
        )
        redis.start()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        slack = Slack()
        slack.server.start()
        model = _fake_model().start()
        parley = Parley(pg, redis, timings, procs.free_port())
        log(f"PostgreSQL :{pg.port}, Redis :{redis.port}; migrating")
        parley.manage("migrate", "--noinput", "-v", "0")
        seed(parley, slack.server.url, model.url)
        parley.start_web()
        parley.start_worker()
        parley.start_beat()
        chaos = Chaos(timings, parley, slack, model, redis, pg)
        for name in names:
            log(f"case {name}")
            for result in CASES[name](chaos):
                results.append(result)
                log(
                    f"  {result.case}: lost {result.lost}, duplicated {result.duplicated}, "
                    f"recovery {result.recovery:.1f} s, reply max {result.late_max:.1f} s"
                )
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception):
            if model is not None:
                model.stop()
        with contextlib.suppress(Exception):
            if slack is not None:
                slack.server.stop()
    print()
    print(table(results))
    elapsed = time.monotonic() - started
    bad = [r for r in results if r.lost or r.duplicated]
    verdict = "FAILED: " + ", ".join(r.case for r in bad) if bad else "nothing lost, nothing duplicated"
    print(f"\n{len(results)} cases in {elapsed:.0f} s; {verdict}")
    (OUT / "results.json").write_text(json.dumps([r.__dict__ for r in results], indent=2))
    if args.write_docs and results:
        write_docs(results, fast=args.fast, elapsed=elapsed)
    return 1 if bad or len(results) < len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
