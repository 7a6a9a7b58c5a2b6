"""Web-chat benchmark: idle sockets one Parley process holds per GiB, and message round trips.

    .venv/bin/python bench/webchat_sockets.py [--sockets 2000] [--concurrency 50] [--layer-rtts 300] [--messages 40]

Production shape: PostgreSQL + channels-redis. It uses its own database (BENCH_DATABASE_URL, default
``postgres://postgres@127.0.0.1:5432/parley_webchat_bench``, created and migrated if missing) and
REDIS_URL (default ``redis://127.0.0.1:6379/5``). It starts one uvicorn process serving
``config.asgi`` on 127.0.0.1 (tasks on its in-process pool, so no Celery worker is needed), then:

1. opens ``--sockets`` idle chat sockets (each with its own visitor token, Origin allowed),
   ``--concurrency`` handshakes at a time, each complete when its ``history`` frame arrives →
   sockets per second, handshake times, and the server's CPU seconds per 1,000 handshakes; reads
   the server's resident memory (VmRSS) before and after → MiB per 1,000 sockets and sockets per GiB;
2. layer round trip: this process publishes a frame to a conversation's group through
   channels-redis — what a Celery worker on another machine does — and times its arrival on the
   socket;
3. message round trip: a socket sends a message answered by a knowledge entry (no model call) and
   times the answer frame: consumer → accept → pipeline → web adapter → layer → socket.

Everything runs on 127.0.0.1, in bounded counts, and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parley_webchat_bench")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5")
ORIGIN = "https://bench.example.com"
ENV = {
    **os.environ,
    "DATABASE_URL": BENCH_DB,
    "REDIS_URL": REDIS,
    "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    "PARLEY_ENCRYPTION_KEYS": "b0Jm7Qx1cV9dR2tY5uI8oP3aS6fG4hK0lZ1xC7vB2nM=",
    "PARLEY_TASKS_MODE": "inprocess",
    "LOG_LEVEL": "WARNING",
    "CHANNEL_LAYER_PREFIX": "parley-bench",
}


def ensure_database() -> None:
    import psycopg

    name = BENCH_DB.rsplit("/", 1)[1]
    admin = BENCH_DB.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL
    )


def setup_django():
    os.environ.update(
        {
            k: ENV[k]
            for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PARLEY_ENCRYPTION_KEYS", "CHANNEL_LAYER_PREFIX")
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def make_channel():
    from apps.bots.models import Bot, KnowledgeEntry
    from apps.channels.models import Channel
    from apps.tenants.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    bot, _ = Bot.objects.get_or_create(
        tenant=tenant,
        slug="bench",
        defaults={"name": "Bench", "merge_window_ms": 0, "user_rate_limit_per_minute": 0, "rate_limit_per_second": 0},
    )
    KnowledgeEntry.objects.get_or_create(bot=bot, question="ping bench", defaults={"answer": "pong **bench**"})
    channel, _ = Channel.objects.update_or_create(
        key="bench-web",
        defaults={"bot": bot, "platform": "web", "credentials": {}, "allowed_origins": ORIGIN, "enabled": True},
    )
    return channel


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, *, deflate: bool = True) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
            "--ws-per-message-deflate",
            str(deflate).lower(),
        ],
        cwd=ROOT,
        env=ENV,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def open_socket(url: str, token: str):
    import websockets

    ws = await websockets.connect(
        url,
        origin=ORIGIN,
        subprotocols=["parley.v1", f"parley.auth.{token}"],
        ping_interval=None,
        max_queue=64,
        open_timeout=60,
    )
    frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
    assert frame["type"] == "history", frame
    return ws


async def wait_for(ws, kind: str, timeout: float = 30) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame.get("type") == kind:
            return frame


async def run(args, channel, visitors, pid: int, port: int) -> dict:
    from channels.layers import get_channel_layer

    from apps.channels.platforms.web.adapter import FRAME_EVENT, group_name

    url = f"ws://127.0.0.1:{port}/ws/chat/{channel.key}/"
    # Warm up: the first connection imports and caches what every later one uses.
    warm = await open_socket(url, visitors[0][0])
    await warm.close()
    await asyncio.sleep(1)
    base = rss_kib(pid)

    gate = asyncio.Semaphore(args.concurrency)
    handshakes: list[float] = []

    async def one(token: str):
        async with gate:
            began = time.perf_counter()
            ws = await open_socket(url, token)
            handshakes.append((time.perf_counter() - began) * 1000)
            return ws

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    # In visitor order: socket i belongs to visitors[i]'s conversation.
    sockets = await asyncio.gather(*(one(token) for token, _ in visitors[: args.sockets]))
    connect_s = time.perf_counter() - started
    connect_cpu = cpu_seconds(pid) - cpu_before
    await asyncio.sleep(2)
    loaded = rss_kib(pid)
    per_socket_kib = (loaded - base) / len(sockets)

    layer = get_channel_layer()
    rtts = []
    for i in range(args.layer_rtts):
        _, chat_id = visitors[i % len(sockets)]
        ws = sockets[i % len(sockets)]
        sent = time.perf_counter()
        await layer.group_send(
            group_name(channel.pk, chat_id), {"type": FRAME_EVENT, "frame": {"type": "bench", "n": i}}
        )
        await wait_for(ws, "bench")
        rtts.append((time.perf_counter() - sent) * 1000)

    answers = []
    for i in range(args.messages):
        ws = sockets[i % len(sockets)]
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "id": f"bench-{time.time_ns()}", "text": "ping bench"}))
        frame = await wait_for(ws, "message", timeout=60)
        assert frame["text"] == "pong **bench**", frame
        answers.append((time.perf_counter() - sent) * 1000)

    for ws in sockets:
        await ws.close()
    return {
        "sockets": len(sockets),
        "concurrency": args.concurrency,
        "connect_seconds": round(connect_s, 2),
        "sockets_per_second": round(len(sockets) / connect_s, 1),
        "handshake_ms": {
            "p50": round(statistics.median(handshakes), 1),
            "p99": round(pct(handshakes, 99), 1),
            "max": round(max(handshakes), 1),
        },
        "server_cpu_s_per_1000": round(connect_cpu / len(sockets) * 1000, 2),
        "rss_base_mib": round(base / 1024, 1),
        "rss_loaded_mib": round(loaded / 1024, 1),
        "mib_per_1000": round((loaded - base) / 1024 / len(sockets) * 1000, 1),
        "kib_per_socket": round(per_socket_kib, 1),
        "sockets_per_gib": int(1024 * 1024 / per_socket_kib) if per_socket_kib > 0 else None,
        "layer_rtt_ms": {
            "n": len(rtts),
            "p50": round(statistics.median(rtts), 2),
            "p95": round(pct(rtts, 95), 2),
            "p99": round(pct(rtts, 99), 2),
        },
        "message_rtt_ms": {
            "n": len(answers),
            "p50": round(statistics.median(answers), 1),
            "p95": round(pct(answers, 95), 1),
            "max": round(max(answers), 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50, help="handshakes in flight at once")
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="serve without permessage-deflate (uvicorn --ws-per-message-deflate false): its per-socket "
        "compressor is most of what an idle socket weighs",
    )
    parser.add_argument("--layer-rtts", type=int, default=300)
    parser.add_argument("--messages", type=int, default=40)
    args = parser.parse_args()
    args.sockets = max(10, min(args.sockets, 8000))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.sockets * 2 + 512)), hard))
    ensure_database()
    setup_django()
    channel = make_channel()
    from apps.channels.platforms.web.visitor import visitor_token_issue

    visitors = []
    for _ in range(args.sockets):
        issued = visitor_token_issue(channel=channel)
        visitors.append((issued.token, issued.visitor.chat_id))

    port = free_port()
    server = start_server(port, deflate=not args.no_deflate)
    try:
        result = asyncio.run(run(args, channel, visitors, server.pid, port))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    result["permessage_deflate"] = not args.no_deflate
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
