"""`make bench`: Parley in its production shape on this machine, measured from the outside.

Starts (and always stops) PostgreSQL-backed Parley under gunicorn + uvicorn workers, a Celery
worker with the threads pool, a fake OpenAI-compatible model answering after 200 ms and a fake
Slack, then drives signed webhooks, closed-loop users and idle web-chat sockets at it from a
separate load process on 127.0.0.1. The same load is then pointed at a bare ASGI app under the same
gunicorn settings: the ceiling. Prints one table; ``--write-docs`` also puts it in
``docs/performance.md``. Details: ``bench/README.md``.

    .venv/bin/python bench/run.py [--quick] [--phase-seconds 10] [--ws-sockets 5000] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import procs, wrk  # noqa: E402

OUT = ROOT / "var" / "bench"
LOGS = OUT / "logs"
PY = sys.executable
BIN = Path(PY).parent
MODEL_DELAY_S = 0.2
WEB_POOL_MAX = 12  # PostgreSQL connections per web worker when the settings use a pool

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/parley_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"

TARGETS = {
    "ack_p99_200": 50.0,
    "e2e_p50_100": 30.0,
    "e2e_p99_100": 150.0,
    "sustained": 300.0,
    "cache_hit": 20.0,
    "ws_sockets": 5000,
    "ws_mem_mib": 1024.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- environment ------------------------------------------------------------------------------


def bench_urls() -> tuple[str, str]:
    db = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    name = urlsplit(db).path.lstrip("/")
    if not name.startswith("parley_bench"):
        # The harness drops and re-creates this database: never let it be anyone else's.
        raise SystemExit(f"bench: refusing database '{name}': its name must start with 'parley_bench'")
    return db, redis_url


def machine_info(db_url: str, redis_url: str) -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    info["kernel"] = platform.release()
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(db_url), connect_timeout=5) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:
        info["postgresql"] = f"n/a: {exc}"
    try:
        import redis

        info["redis"] = redis.Redis.from_url(redis_url, socket_timeout=5).info("server")["redis_version"]
    except Exception as exc:
        info["redis"] = f"n/a: {exc}"
    for pkg in ("django", "gunicorn", "uvicorn", "celery", "channels"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            info[pkg] = version(pkg)
    with contextlib.suppress(Exception):
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        if dirty:
            info["commit"] += " (+ uncommitted changes)"
    return info


def _admin_dsn(db_url: str) -> str:
    parts = urlsplit(db_url.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(path="/postgres"))


def reset_database(db_url: str) -> None:
    import psycopg

    name = urlsplit(db_url).path.lstrip("/")
    with psycopg.connect(_admin_dsn(db_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def free_pg_connections(db_url: str) -> int | None:
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(db_url), connect_timeout=5) as conn:
            limit = int(conn.execute("SHOW max_connections").fetchone()[0])
            used = int(conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0])
            return limit - used
    except Exception:
        return None


def base_env(db_url: str, redis_url: str, web_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "PROMETHEUS_"))}
    env.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(50),
            "PARLEY_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            "PARLEY_VAR_DIR": str(OUT / "var"),
            # The fake model and the fake Slack listen on loopback, which production's outbound
            # guard refuses: allowed here as an operator allows an on-premise server.
            "PARLEY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        }
    )
    return env


def run_checked(argv: list[str], env: dict[str, str], what: str, timeout: float = 300) -> str:
    res = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return res.stdout


def http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- servers ------------------------------------------------------------------------------------


def start_gunicorn(name: str, app: str, *, port: int, workers: int, env: dict[str, str], conf: bool) -> procs.Proc:
    argv = [str(BIN / "gunicorn"), app]
    conf_path = ROOT / "deploy" / "prometheus" / "gunicorn.conf.py"
    if conf and conf_path.exists():
        argv += ["-c", str(conf_path)]  # Parley's Prometheus multiprocess hooks
    # Command-line flags win over the config file: both servers get exactly these.
    argv += [
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--keep-alive",
        "5",
    ]
    proc = procs.start(name, argv, env=env, log_dir=LOGS, cwd=ROOT)
    procs.wait_until(lambda: port_open(port), timeout=60, what=f"{name} to listen on {port}", proc=proc)
    # Every worker must be up (and have imported the app) before load starts.
    procs.wait_until(lambda: len(procs.children(proc.pid)) >= workers, timeout=60, what=f"{name} workers", proc=proc)
    return proc


def workers_of(proc: procs.Proc) -> list[int]:
    return procs.children(proc.pid)


# --- load phases ----------------------------------------------------------------------------------


def load(args: list[str], env: dict[str, str], *, timeout: float, name: str) -> dict[str, Any]:
    """Run one load phase in its own process; its last stdout line is the JSON result."""
    proc = procs.start(name, [PY, "-m", "bench.harness.load", *args], env=env, log_dir=LOGS, cwd=ROOT, stdout_pipe=True)
    try:
        out, _ = proc.popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.stop(proc)
        return {"error": f"load phase timed out after {timeout:.0f} s"}
    procs.stop(proc)
    lines = [ln for ln in (out or b"").decode().splitlines() if ln.startswith("{")]
    if proc.popen.returncode != 0 or not lines:
        return {"error": f"load phase failed (status {proc.popen.returncode}); see {proc.log_path}"}
    return json.loads(lines[-1])


def ws_phase(
    url: str,
    server: procs.Proc,
    port: int,
    count: int,
    tokens_file: str,
    env: dict[str, str],
    *,
    hold: float,
    deadline: float,
) -> dict[str, Any]:
    """Open ``count`` idle sockets against ``server``; measure what its workers hold and weigh."""
    pids = workers_of(server)
    time.sleep(1.0)
    before = {pid: procs.rss_kb(pid) for pid in pids}
    argv = [PY, "-m", "bench.harness.load", "ws", "--url", url, "--count", str(count), "--deadline", str(deadline)]
    if tokens_file:
        argv += ["--tokens-file", tokens_file]
    proc = procs.start("load-ws", argv, env=env, log_dir=LOGS, cwd=ROOT, stdin=subprocess.PIPE, stdout_pipe=True)
    ready: dict[str, Any] | None = None
    until = time.monotonic() + deadline + 120
    assert proc.popen.stdout is not None and proc.popen.stdin is not None
    while time.monotonic() < until:
        line = proc.popen.stdout.readline()
        if not line:
            break
        text = line.decode().strip()
        if text.startswith("READY "):
            ready = json.loads(text[6:])
            break
    if ready is None:
        procs.stop(proc)
        return {"error": f"sockets never became ready; see {proc.log_path}"}
    time.sleep(hold)  # idle: nothing is sent; a server that drops idle sockets would lose them here
    after = {pid: procs.rss_kb(pid) for pid in pids}
    held = procs.established_per_pid(port, pids)
    proc.popen.stdin.write(b"close\n")
    proc.popen.stdin.flush()
    try:
        out, _ = proc.popen.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        out = b""
    procs.stop(proc)
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
    final = json.loads(lines[-1]) if lines else {}
    opened = sum(held.values())
    delta_kb = sum(after.values()) - sum(before.values())
    return {
        **ready,
        "alive_after_hold": final.get("alive_after_hold"),
        "held_per_process": {str(pid): n for pid, n in held.items()},
        "rss_before_mib": {str(pid): round(kb / 1024, 1) for pid, kb in before.items()},
        "rss_after_mib": {str(pid): round(kb / 1024, 1) for pid, kb in after.items()},
        "mib_per_1000": round(delta_kb / 1024 / opened * 1000, 1) if opened else None,
        "process_rss_mib": round(max(after.values()) / 1024, 1) if after else None,
        "loadgen_peak_rss_kb": final.get("loadgen_peak_rss_kb"),
    }


def sustained_ok(r: dict[str, Any], nominal: float, kept_up_s: float) -> tuple[bool, str]:
    """Whether an open-loop phase was sustained: everything acked, answered exactly once, and the
    replies kept pace (the last one arrived within ``kept_up_s`` of the last send)."""
    if "error" in r:
        return False, r["error"]
    if r.get("statuses", {}) != {"200": r.get("sent")}:
        return False, f"non-200 acks {r.get('statuses')}"
    if r.get("offered_rate", 0) < 0.95 * nominal:
        return False, f"load generator reached only {r['offered_rate']:.0f}/s"
    if r.get("lost"):
        return False, f"{r['lost']} without reply"
    if r.get("duplicated"):
        return False, f"{r['duplicated']} duplicated"
    late = r.get("last_reply_after_send_s")
    if late is None or late > kept_up_s:
        return False, f"fell behind: last reply {late if late is None else round(late, 1)} s after the last send"
    return True, ""


# --- profiling ----------------------------------------------------------------------------------


def start_profilers(pids: dict[str, int], seconds: float) -> list[tuple[str, subprocess.Popen, Path]]:
    spy = BIN / "py-spy"
    if not spy.exists():
        log("n/a: profiling needs py-spy in the venv (pip install -r requirements/test.txt)")
        return []
    out = []
    for label, pid in pids.items():
        path = OUT / f"profile-{label}.txt"
        argv = [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
        # --gil: only the thread holding the GIL is sampled, so the profile is CPU, not waiting.
        argv += ["--format", "raw", "--output", str(path), "--nonblocking", "--threads", "--gil"]
        popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        out.append((label, popen, path))
    return out


def summarize_profile(path: Path, top: int = 25) -> str:
    """Own-time and inclusive-time leaders from py-spy's collapsed stacks (idle waits dropped)."""
    idle = re.compile(r"\b(wait|select|poll|epoll|sleep|_recv_into|recv|accept|readinto|get)\b \(")
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        frames = stack.split(";")
        if idle.search(frames[-1]) or ("threading.py" in frames[-1] and "wait" in frames[-1]):
            continue
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    if not total:
        return "(no busy samples)"
    lines = [f"busy samples: {total}", "own time:"]
    for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {f}")
    lines.append("inclusive (Parley code):")
    mine = [(f, n) for f, n in incl.items() if "/apps/" in f or "/config/" in f]
    for f, n in sorted(mine, key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / total:5.1f}%  {f}")
    return "\n".join(lines)


# --- report -------------------------------------------------------------------------------------


def f(v: Any, nd: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return f"{v:.{nd}f}"
    return str(v)


def mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✅" if ok else " ❌")


def build_report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: {m.get('nproc')} cores ({m.get('cpu', '?')}), {m.get('memory_gib', '?')} GiB RAM, "
        f"Linux {m.get('kernel', '?')}; Python {m.get('python')}, PostgreSQL {m.get('postgresql')}, "
        f"Redis {m.get('redis')}; Django {m.get('django', '?')}, gunicorn {m.get('gunicorn', '?')}, "
        f"uvicorn {m.get('uvicorn', '?')}, Celery {m.get('celery', '?')}. Commit {m.get('commit', '?')}.",
        f"Load average at start: {' '.join(m.get('loadavg_at_start', []))} — the cores are shared with other "
        "work, so treat the figures as a floor for a dedicated machine.",
        f"Shape: gunicorn -k uvicorn_worker.UvicornWorker -w {res['settings']['web_workers']}; "
        f"celery worker -P threads -c {res['settings']['celery_concurrency']} -Q default,llm,webhooks; "
        f"settings: {res['settings'].get('variant', 'shipped')}; "
        f"fake model {int(MODEL_DELAY_S * 1000)} ms; phases of {res['settings']['phase_seconds']:g} s; "
        f"run took {res.get('elapsed_s', 0):.0f} s.",
        "",
        "| # | measure | Parley | ceiling (bare ASGI) | Parley / ceiling | target |",
        "|---|---|---|---|---|---|",
    ]
    ack = res.get("ack", {})
    ceil = res.get("ceiling", {})
    for rate in (50, 200, 500):
        r = ack.get(str(rate), {})
        c = ceil.get("ack", {}).get(str(rate), {})
        p = (r.get("ack") or {}) if "error" not in r else {}
        q = (c.get("ack") or {}) if "error" not in c else {}
        ok = None
        if rate == 200 and p.get("p99") is not None:
            ok = p["p99"] <= TARGETS["ack_p99_200"]
        parley = f"{f(p.get('p50'))} / {f(p.get('p99'))} ms" if p else f"n/a: {r.get('error', 'not run')}"
        ceiling = f"{f(q.get('p50'))} / {f(q.get('p99'))} ms" if q else f"n/a: {c.get('error', 'not run')}"
        ratio = (
            f"{p['p50'] / q['p50']:.1f}× / {p['p99'] / q['p99']:.1f}×"
            if p.get("p50") and q.get("p50") and p.get("p99") and q.get("p99")
            else "n/a"
        )
        if r.get("worker_stopped"):
            parley += " (web path alone: worker stopped, the pipeline was already saturated)"
        target = "p99 ≤ 50 ms" if rate == 200 else ""
        lines.append(
            f"| 1 | webhook ack p50 / p99 at {rate} msg/s | {parley}{mark(ok)} | {ceiling} | {ratio} | {target} |"
        )

    e = res.get("e2e_100", {})
    ee = e.get("e2e") or {}
    if ee.get("p50") is not None:
        o50, o99 = ee["p50"] - MODEL_DELAY_S * 1000, ee["p99"] - MODEL_DELAY_S * 1000
        ok = o50 <= TARGETS["e2e_p50_100"] and o99 <= TARGETS["e2e_p99_100"]
        val = f"{o50:.1f} / {o99:.1f} ms{mark(ok)}"
    else:
        val = f"n/a: {e.get('error') or e.get('why') or 'no replies'}"
    lines.append(f"| 2 | end-to-end overhead p50 / p99 at 100 msg/s | {val} | — | — | p50 ≤ 30, p99 ≤ 150 ms |")
    for c, r in res.get("closed", {}).items():
        ee = r.get("e2e") or {}
        if ee.get("p50") is not None:
            val = (
                f"{ee['p50'] - MODEL_DELAY_S * 1000:.1f} / {ee['p99'] - MODEL_DELAY_S * 1000:.1f} ms, "
                f"{r.get('msgs_per_s', 0):.1f} msg/s"
            )
            if r.get("timeouts") or r.get("duplicated"):
                val += f" ({r.get('timeouts', 0)} timeouts, {r.get('duplicated', 0)} dup)"
            pm = r.get("per_message") or {}
            if pm:
                val += (
                    f"; per message: CPU web {f(pm.get('cpu_ms_web'))} + worker {f(pm.get('cpu_ms_celery'))} ms, "
                    f"{f(pm.get('pg_transactions'))} PostgreSQL transactions"
                )
        else:
            val = f"n/a: {r.get('error', 'no replies')}"
        lines.append(f"| 2 | closed loop, {c} users: overhead p50 / p99, throughput | {val} | — | — | |")

    s = res.get("sustained", {})
    best = s.get("best")
    cbest = ceil.get("sustained", {}).get("best")
    ok = None if best is None else best >= TARGETS["sustained"]
    detail = s.get("first_failure", "")
    val = (f"{best:g} msg/s" if best is not None else "none of the rates tried") + mark(ok)
    if detail:
        val += f" (next step: {detail})"
    ratio = f"{best / cbest:.2f}×" if best and cbest else "n/a"
    cval = f"≥ {cbest:g} req/s" if cbest else f"n/a: {ceil.get('sustained', {}).get('first_failure', 'not run')}"
    if cbest and ceil.get("sustained", {}).get("first_failure"):
        cval += f" (next step: {ceil['sustained']['first_failure']})"
    lines.append(f"| 3 | highest sustained rate, 0 lost, 0 duplicated | {val} | {cval} | {ratio} | ≥ 300 msg/s |")

    wp, wh = (res.get("wrk") or {}).get("parley") or {}, (res.get("wrk") or {}).get("hello") or {}

    def wfmt(w: dict[str, Any]) -> str:
        if not w.get("rps"):
            return f"n/a: {w.get('error') or (res.get('wrk') or {}).get('why') or 'not run'}"
        out = f"{w['rps']:.0f} req/s, p50 {f(w.get('p50'))} / p99 {f(w.get('p99'))} ms"
        if w.get("non_2xx") or w.get("socket_errors"):
            out += f" ({w.get('non_2xx', 0)} non-2xx, {w.get('socket_errors', 0)} socket errors)"
        return out

    ratio = f"{wp['rps'] / wh['rps']:.3f}×" if wp.get("rps") and wh.get("rps") else "n/a"
    note = "" if wp.get("worker_running", True) else " (worker stopped)"
    conns = (wp or wh).get("connections", "")
    lines.append(f"| 7 | most acks per second (wrk, {conns} connections){note} | {wfmt(wp)} | {wfmt(wh)} | {ratio} | |")

    for kind, label in (("knowledge", "knowledge entry"), ("answer", "cached answer")):
        r = res.get("cache", {}).get(kind, {})
        rr = r.get("reply") or {}
        if rr.get("p50") is not None:
            ok = rr["p50"] <= TARGETS["cache_hit"]
            val = f"{rr['p50']:.1f} / {rr['p99']:.1f} ms{mark(ok)}"
            if r.get("model_calls") is not None:
                val += f", model calls {r['model_calls']}"
        else:
            val = f"n/a: {r.get('error', 'no replies')}"
        lines.append(f"| 4 | cache hit ({label}): reply time p50 / p99 | {val} | — | — | ≤ 20 ms |")

    w = res.get("ws", {})
    cw = ceil.get("ws", {})
    if w.get("open") is not None and "error" not in w:
        ok = w["open"] >= TARGETS["ws_sockets"] and (w.get("process_rss_mib") or 1e9) <= TARGETS["ws_mem_mib"]
        val = (
            f"{w['open']} held by 1 process ({w.get('process_rss_mib')} MiB RSS), "
            f"{w.get('mib_per_1000')} MiB / 1,000{mark(ok)}"
        )
        if w.get("failures"):
            val += f"; failed: {w['failures']}"
    else:
        val = f"n/a: {w.get('error') or w.get('why') or 'not run'}"
    if cw.get("open") is not None and "error" not in cw:
        cval = f"{cw['open']} ({cw.get('process_rss_mib')} MiB RSS), {cw.get('mib_per_1000')} MiB / 1,000"
    else:
        cval = f"n/a: {cw.get('error', 'not run')}"
    ratio = (
        f"{w['mib_per_1000'] / cw['mib_per_1000']:.1f}× memory"
        if w.get("mib_per_1000") and cw.get("mib_per_1000")
        else "n/a"
    )
    lines.append(f"| 5 | idle web-chat sockets, memory per 1,000 | {val} | {cval} | {ratio} | 5,000 in ≤ 1 GiB |")

    for row in res.get("memory", []):
        lines.append(f"| 6 | peak RSS: {row['process']} | {row['parley']} | {row.get('ceiling', '—')} | | |")
    return "\n".join(lines)


def write_docs(report: str) -> None:
    path = ROOT / "docs" / "performance.md"
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = path.read_text() if path.exists() else f"# Performance\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        text += f"\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}\n{report}\n{end}{tail}")


# --- the run ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase-seconds", type=float, default=float(os.environ.get("BENCH_PHASE_SECONDS", 10)))
    parser.add_argument(
        "--web-workers", type=int, default=int(os.environ.get("BENCH_WEB_WORKERS", os.cpu_count() or 2))
    )
    parser.add_argument("--celery-concurrency", type=int, default=int(os.environ.get("BENCH_CELERY_CONCURRENCY", 64)))
    parser.add_argument("--ws-sockets", type=int, default=int(os.environ.get("BENCH_WS_SOCKETS", 5000)))
    parser.add_argument("--rates", default="50,100,200,300,400,500", help="open-loop ladder (msg/s)")
    parser.add_argument("--users", default="1,8,32,64", help="closed-loop concurrency levels")
    parser.add_argument("--ceiling-rates", default="50,200,500,1000,2000")
    parser.add_argument("--kept-up-s", type=float, default=2.0, help="sustained: last reply within this of last send")
    parser.add_argument("--quick", action="store_true", help="short smoke run: 3 s phases, fewer steps, 500 sockets")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: ack,closed,cache,wrk,ws,ceiling")
    parser.add_argument("--profile", action="store_true", help="py-spy the web and worker processes in one phase")
    parser.add_argument("--profile-rate", type=float, default=100, help="the open-loop rate --profile samples")
    parser.add_argument("--ws-deadline", type=float, default=float(os.environ.get("BENCH_WS_DEADLINE", 60)))
    parser.add_argument(
        "--variant", choices=["shipped", "tuned"], default="shipped", help="tuned: bench/harness/settings_tuned.py"
    )
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/performance.md")
    args = parser.parse_args()
    if args.quick:
        args.phase_seconds = 3
        args.rates = "50,100,200"
        args.users = "1,8"
        args.ceiling_rates = "50,200"
        args.ws_sockets = min(args.ws_sockets, 500)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    procs.install_signal_handlers()
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    res: dict[str, Any] = {}
    try:
        run(args, skip, res)
    except Exception:
        traceback.print_exc()
        res.setdefault("fatal", traceback.format_exc(limit=3))
    finally:
        procs.stop_all()
    res["elapsed_s"] = time.monotonic() - started
    res["memory"] = memory_rows(res)
    (OUT / "results.json").write_text(json.dumps(res, indent=2, default=str))
    report = build_report(res) if "machine" in res else "n/a: the bench did not get as far as the machine check"
    (OUT / "report.md").write_text(report + "\n")
    print()
    print(report)
    if res.get("fatal"):
        print(f"\nbench stopped early: {res['fatal'].strip().splitlines()[-1]}")
    print(f"\nraw results: {OUT / 'results.json'}; logs: {LOGS}/")
    if args.write_docs:
        write_docs(report)
        print("docs/performance.md updated")
    return 1 if res.get("fatal") else 0


def memory_rows(res: dict[str, Any]) -> list[dict[str, str]]:
    peaks: dict[str, list[int]] = {}
    for proc in procs.finished():
        if not proc.peaks:
            continue
        if proc.name.startswith("load"):
            continue
        for pid, (role, kb) in proc.peaks.items():
            label = proc.name if role == "main" else f"{proc.name} worker"
            peaks.setdefault(label, []).append(kb)
    load_kb = [
        r.get("loadgen_peak_rss_kb")
        for r in _all_phase_results(res)
        if isinstance(r, dict) and r.get("loadgen_peak_rss_kb")
    ]
    if load_kb:
        peaks["load generator + fake Slack"] = [max(load_kb)]

    def fmt(kbs: list[int] | None) -> str:
        if not kbs:
            return "—"
        mib = [kb / 1024 for kb in kbs]
        return f"{max(mib):.0f} MiB" if len(mib) == 1 else f"{max(mib):.0f} MiB max of {len(mib)}"

    pairs = [
        ("web: gunicorn master", "web", "hello"),
        ("web: uvicorn worker (each)", "web worker", "hello worker"),
        ("web, 1 worker holding the sockets", "web-ws worker", "hello-ws worker"),
        ("celery worker (threads pool)", "celery", None),
        ("fake model server", "fake-llm", None),
        ("load generator + fake Slack", "load generator + fake Slack", None),
    ]
    rows = []
    for label, mine, theirs in pairs:
        if mine not in peaks and (theirs is None or theirs not in peaks):
            continue
        rows.append(
            {"process": label, "parley": fmt(peaks.get(mine)), "ceiling": fmt(peaks.get(theirs)) if theirs else "—"}
        )
    redis_peak = res.get("redis_peak")
    if redis_peak:
        rows.append({"process": "Redis (whole server, shared)", "parley": redis_peak, "ceiling": "—"})
    return rows


def _all_phase_results(res: dict[str, Any]):
    for key in ("ack", "closed", "cache"):
        yield from (res.get(key) or {}).values()
    yield res.get("e2e_100") or {}
    yield res.get("ws") or {}
    for r in (res.get("sustained") or {}).get("steps", {}).values():
        yield r
    for r in ((res.get("ceiling") or {}).get("ack") or {}).values():
        yield r


def run(args: argparse.Namespace, skip: set[str], res: dict[str, Any]) -> None:
    db_url, redis_url = bench_urls()
    res["settings"] = {
        "web_workers": args.web_workers,
        "celery_concurrency": args.celery_concurrency,
        "phase_seconds": args.phase_seconds,
        "variant": args.variant,
    }
    log("machine check")
    res["machine"] = machine_info(db_url, redis_url)
    log(json.dumps(res["machine"]))
    free = free_pg_connections(db_url)
    needed = args.celery_concurrency + 2 + WEB_POOL_MAX * args.web_workers + 10
    if free is not None and free < needed:
        reduced = max(8, free - 2 - WEB_POOL_MAX * args.web_workers - 10)
        log(f"only {free} PostgreSQL connections free: Celery concurrency {args.celery_concurrency} -> {reduced}")
        args.celery_concurrency = reduced
        res["settings"]["celery_concurrency"] = reduced

    log(f"database {urlsplit(db_url).path.lstrip('/')}: drop, create, migrate; Redis {redis_url}: FLUSHDB")
    reset_database(db_url)
    import redis

    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    web_port, llm_port, slack_port = procs.free_port(), procs.free_port(), procs.free_port()
    env = base_env(db_url, redis_url, web_port)
    run_checked([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env, "migrate")

    log("fake model (200 ms) and seed data")
    procs.start(
        "fake-llm",
        [PY, "-m", "bench.harness.fake_llm", "--port", str(llm_port), "--delay", str(MODEL_DELAY_S)],
        env=env,
        log_dir=LOGS,
        cwd=ROOT,
    )
    procs.wait_until(lambda: port_open(llm_port), timeout=30, what="fake model")
    tokens_file = str(OUT / "ws-tokens.json")
    seed = json.loads(
        run_checked(
            [
                PY,
                "-m",
                "bench.harness.seed",
                "--llm-url",
                f"http://127.0.0.1:{llm_port}/v1",
                "--slack-url",
                f"http://127.0.0.1:{slack_port}",
                "--tokens",
                str(0 if "ws" in skip else args.ws_sockets),
                "--tokens-file",
                tokens_file,
            ],
            env,
            "seed",
        )
        .strip()
        .splitlines()[-1]
    )

    prom_dir = OUT / "prometheus"
    prom_dir.mkdir(parents=True, exist_ok=True)
    web_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(prom_dir)}
    if args.variant == "tuned":
        web_env["DJANGO_SETTINGS_MODULE"] = "bench.harness.settings_tuned"
        web_only_env = {**web_env, "BENCH_DB_POOL_MAX": "16"}
        celery_env = {**web_env, "BENCH_DB_POOL_MAX": str(args.celery_concurrency + 4)}
    else:
        # Only used when the pool is turned off (DB_POOL_MAX_SIZE=0): Django's other requests run
        # on a new thread each and must not leave persistent connections behind.
        web_only_env = {**web_env, "DB_CONN_MAX_AGE": os.environ.get("BENCH_WEB_CONN_MAX_AGE", "0")}
        celery_env = web_env
    # Settings with a connection pool (DB_POOL_MAX_SIZE) size it per process: each Celery thread
    # needs its own connection; the web needs one per request in flight. Ignored by settings
    # without a pool.
    web_only_env.setdefault("DB_POOL_MAX_SIZE", str(WEB_POOL_MAX))
    celery_env = {**celery_env, "DB_POOL_MAX_SIZE": str(args.celery_concurrency + 2)}
    log(f"Parley web (gunicorn, {args.web_workers} uvicorn workers) and Celery (threads, {args.celery_concurrency})")
    web = start_gunicorn(
        "web", "config.asgi:application", port=web_port, workers=args.web_workers, env=web_only_env, conf=True
    )
    celery_argv = [str(BIN / "celery"), "-A", "config", "worker", "-P", "threads", "-c", str(args.celery_concurrency)]
    celery_argv += ["-Q", "default,llm,webhooks", "-l", "INFO", "-n", f"bench-{os.getpid()}@%h"]
    celery_argv += os.environ.get("BENCH_CELERY_ARGS", "").split()
    celery = procs.start("celery", celery_argv, env=celery_env, log_dir=LOGS, cwd=ROOT)
    procs.wait_until(lambda: http_ok(f"http://127.0.0.1:{web_port}/healthz"), timeout=60, what="/healthz", proc=web)
    target = f"http://127.0.0.1:{web_port}"
    common = ["--target", target, "--key", seed["slack_key"], "--secret", seed["signing_secret"]]
    common += ["--slack-port", str(slack_port)]
    ps = args.phase_seconds

    log("warm-up: 4 messages, one at a time, through the whole path")
    warm = load(
        ["sequential", *common, "--text", "Warm-up question [bench:warm]", "--count", "4", "--reply-timeout", "60"],
        env,
        timeout=300,
        name="load-warmup",
    )
    res["warmup"] = warm
    pipeline_ok = (warm.get("reply") or {}).get("n", 0) > 0
    if not pipeline_ok:
        why = warm.get("error") or f"no reply reached the fake Slack (see {LOGS}/celery.log)"
        res["pipeline_why"] = why
        log(f"n/a: end-to-end figures — {why}")
    else:
        log(f"warm-up replies p50 {warm['reply']['p50']:.0f} ms")
        # Let the worker's threads open their database connections before the first measured phase.
        load(["closed", *common, "--users", "16", "--seconds", "3"], env, timeout=120, name="load-warmup2")
        wait_idle(db_url, 30)

    def cpu_now() -> dict[str, float]:
        return {
            "web": sum(procs.cpu_seconds(p) for p in workers_of(web)),
            "celery": procs.cpu_seconds(celery.pid) if celery.alive() else 0.0,
        }

    def cpu_since(before: dict[str, float]) -> dict[str, float]:
        now = cpu_now()
        return {k: round(now[k] - before[k], 2) for k in now}

    # 2: closed-loop users (self-limiting: nothing is left queued afterwards).
    res["closed"] = {}
    if "closed" not in skip and pipeline_ok:
        for users in [int(x) for x in args.users.split(",") if x.strip()]:
            log(f"closed loop, {users} users, {ps:g} s")
            cpu0, x0 = cpu_now(), pg_xacts(db_url)
            r = load(
                ["closed", *common, "--users", str(users), "--seconds", str(ps)],
                env,
                timeout=ps + 90,
                name=f"load-closed-{users}",
            )
            r["cpu_s"] = cpu_since(cpu0)
            x1, answered = pg_xacts(db_url), (r.get("e2e") or {}).get("n") or 0
            if x0 is not None and x1 is not None and answered:
                # Per answered message: database transactions, and CPU ms of the web and worker.
                r["per_message"] = {
                    "pg_transactions": round((x1 - x0) / answered, 1),
                    **{f"cpu_ms_{k}": round(v * 1000 / answered, 1) for k, v in r["cpu_s"].items()},
                }
                log(f"  per message: {r['per_message']}")
            res["closed"][str(users)] = r
            e = r.get("e2e") or {}
            log(f"  {r.get('msgs_per_s', 0):.1f} msg/s, e2e p50 {f(e.get('p50'))} p99 {f(e.get('p99'))} ms")
            wait_idle(db_url, 30)

    # 4: answers with no model call.
    res["cache"] = {}
    if "cache" not in skip and pipeline_ok:
        import httpx

        def llm_calls() -> int | None:
            try:
                return httpx.get(f"http://127.0.0.1:{llm_port}/_bench/calls", timeout=2).json()["calls"]
            except Exception:
                return None

        n = 10 if args.quick else 20
        log(f"cache hit: knowledge entry, {n} questions one at a time")
        before = llm_calls()
        r = load(
            ["sequential", *common, "--text", seed["knowledge_question"], "--count", str(n)],
            env,
            timeout=120,
            name="load-cache-knowledge",
        )
        after = llm_calls()
        r["model_calls"] = None if before is None or after is None else after - before
        res["cache"]["knowledge"] = r
        log(f"  {json.dumps(r.get('reply'))}")
        log(f"cache hit: cached answer (1 priming question with a model call, then {n} hits)")
        cache_common = [*common]
        cache_common[cache_common.index("--key") + 1] = seed["slack_cache_key"]
        before = llm_calls()
        r = load(
            ["sequential", *cache_common, "--text", "How do I reset my password?", "--count", str(n), "--prime", "1"],
            env,
            timeout=120,
            name="load-cache-answer",
        )
        after = llm_calls()
        r["model_calls"] = None if before is None or after is None else after - before - 1
        res["cache"]["answer"] = r
        log(f"  {json.dumps(r.get('reply'))}")

    # 1 + 3: the open-loop ladder, lowest rate first. Ack times at every rate; sustained = the
    # highest rate answered completely, once each, and kept up with. After the first rate the
    # pipeline cannot keep up with, the remaining ack rates are measured with the worker stopped
    # (the web path alone), so a growing backlog does not stretch the run past its time budget.
    res["ack"], res["sustained"] = {}, {"steps": {}, "best": None}
    profilers: list = []
    if "ack" not in skip:
        failed_at: float | None = None if pipeline_ok else 0.0
        rates = [float(x) for x in args.rates.split(",") if x.strip()]
        for rate in rates:
            if failed_at is not None:
                break
            if args.profile and rate == args.profile_rate:
                pids = {"celery": celery.pid, **{f"web{i}": p for i, p in enumerate(workers_of(web))}}
                profilers = start_profilers(pids, ps)
            cpu0 = cpu_now()
            log(f"open loop {rate:g} msg/s for {ps:g} s")
            r = load(
                ["open", *common, "--rate", str(rate), "--seconds", str(ps), "--idle", "8", "--cap", "20"],
                env,
                timeout=ps + 90,
                name=f"load-open-{rate:g}",
            )
            r["cpu_s"] = cpu_since(cpu0)
            res["ack"][f"{rate:g}"] = r
            if rate == 100:
                res["e2e_100"] = r
            log(summarize_open(r))
            ok, why = sustained_ok(r, rate, args.kept_up_s)
            res["sustained"]["steps"][f"{rate:g}"] = {"ok": ok, "why": why}
            if ok:
                res["sustained"]["best"] = rate
            else:
                failed_at = rate
                res["sustained"]["first_failure"] = f"{rate:g}/s: {why}"
            if not wait_idle(db_url, 30):
                log("  backlog still queued after 30 s")
        for label, popen, path in profilers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=30)
            if path.exists():
                (OUT / f"profile-{label}-summary.txt").write_text(summarize_profile(path) + "\n")
                log(f"profile {label}: {OUT / f'profile-{label}-summary.txt'}")
        best = res["sustained"]["best"]
        if pipeline_ok and failed_at and best is not None and failed_at - best > 50:
            mid = float(int((best + failed_at) / 2 / 25) * 25)
            if best < mid < failed_at and wait_idle(db_url, 60):
                log(f"sustained: trying {mid:g} msg/s between {best:g} and {failed_at:g}")
                r = load(
                    ["open", *common, "--rate", str(mid), "--seconds", str(ps), "--idle", "8", "--cap", "20"],
                    env,
                    timeout=ps + 90,
                    name=f"load-open-{mid:g}",
                )
                ok, why = sustained_ok(r, mid, args.kept_up_s)
                res["sustained"]["steps"][f"{mid:g}"] = {"ok": ok, "why": why, "result": r}
                log(summarize_open(r))
                if ok:
                    res["sustained"]["best"] = mid
                else:
                    res["sustained"]["first_failure"] = f"{mid:g}/s: {why}"
        if "e2e_100" not in res:
            res["e2e_100"] = {
                "why": res.get("pipeline_why") or f"the pipeline fell behind below 100 msg/s ({failed_at:g}/s)"
            }
        missing = [x for x in (50.0, 200.0, 500.0) if f"{x:g}" not in res["ack"]]
        if missing:
            with contextlib.suppress(Exception):
                res["redis_peak"] = r_info_peak(redis_url)
            procs.stop(celery)
            for rate in missing:
                log(f"open loop {rate:g} msg/s for {ps:g} s, acks only (worker stopped)")
                cpu0 = cpu_now()
                r = load(
                    ["open", *common, "--rate", str(rate), "--seconds", str(ps), "--no-replies"],
                    env,
                    timeout=ps + 90,
                    name=f"load-ack-{rate:g}",
                )
                r["cpu_s"] = cpu_since(cpu0)
                r["worker_stopped"] = True
                res["ack"][f"{rate:g}"] = r
                log(summarize_open(r))

    # 7 (saturation): the most acks per second, from a C load generator.
    res["wrk"] = {}
    if "wrk" not in skip:
        if not wrk.available():
            res["wrk"]["why"] = "wrk is not installed (Debian package wrk)"
        else:
            script = OUT / "wrk-slack.lua"
            wrk.signed_requests_script(
                script, url_path=f"/webhooks/slack/{seed['slack_key']}/", secret=seed["signing_secret"], count=6000
            )
            # Requests abandoned by the previous phase's client may still be running in the server.
            quiet = wait_quiet(workers_of(web), timeout=60)
            log(f"saturation: wrk, {args.wrk_connections} connections, 5 s, signed webhooks (web quiet: {quiet})")
            w = wrk.run(
                f"{target}/webhooks/slack/{seed['slack_key']}/",
                seconds=5,
                connections=args.wrk_connections,
                script=script,
            )
            w["worker_running"] = celery.alive()
            res["wrk"]["parley"] = w
            log(f"  {json.dumps(w)}")

    with contextlib.suppress(Exception):
        res.setdefault("redis_peak", r_info_peak(redis_url))
    procs.stop(celery)
    procs.stop(web)

    # 5: idle web-chat sockets on one worker process.
    if "ws" not in skip:
        if not seed.get("tokens"):  # the seed mints visitor tokens when the web chat is there
            res["ws"] = {"why": "the web chat has not landed"}
        else:
            port = procs.free_port()
            ws_env = {**web_only_env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
            log(
                f"web chat: up to {args.ws_sockets} idle sockets on one Parley worker "
                f"({args.ws_deadline:g} s to connect)"
            )
            server = start_gunicorn("web-ws", "config.asgi:application", port=port, workers=1, env=ws_env, conf=True)
            res["ws"] = ws_phase(
                f"ws://127.0.0.1:{port}/ws/chat/{seed['web_key']}/",
                server,
                port,
                args.ws_sockets,
                tokens_file,
                env,
                hold=3.0,
                deadline=args.ws_deadline,
            )
            log(f"  {json.dumps({k: v for k, v in res['ws'].items() if k != 'handshake'})}")
            procs.stop(server)

    # 7: the ceiling.
    res["ceiling"] = {"ack": {}, "sustained": {"best": None}}
    if "ceiling" not in skip:
        port = procs.free_port()
        hello = start_gunicorn(
            "hello", "bench.harness.hello_asgi:application", port=port, workers=args.web_workers, env=env, conf=False
        )
        hcommon = ["--target", f"http://127.0.0.1:{port}", "--key", "hello", "--secret", "x", "--no-replies"]
        for rate in [float(x) for x in args.ceiling_rates.split(",") if x.strip()]:
            log(f"ceiling: open loop {rate:g} req/s for {ps:g} s")
            cpu0 = {"web": sum(procs.cpu_seconds(p) for p in workers_of(hello))}
            r = load(
                ["open", *hcommon, "--rate", str(rate), "--seconds", str(ps)], env, timeout=ps + 60, name="load-hello"
            )
            r["cpu_s"] = {"web": round(sum(procs.cpu_seconds(p) for p in workers_of(hello)) - cpu0["web"], 2)}
            res["ceiling"]["ack"][f"{rate:g}"] = r
            log(summarize_open(r))
            a = r.get("ack") or {}
            clean = r.get("statuses") == {"200": r.get("sent")} and r.get("offered_rate", 0) >= 0.95 * rate
            # Kept pace: every request answered 200 and the p99 stays under a second (no queue growing).
            if clean and (a.get("p99") or 1e9) <= 1000:
                if "first_failure" not in res["ceiling"]["sustained"]:
                    res["ceiling"]["sustained"]["best"] = rate
            elif "first_failure" not in res["ceiling"]["sustained"]:
                why = (
                    f"p99 {f(a.get('p99'))} ms, offered {f(r.get('offered_rate'), 0)}/s, {r.get('statuses')}"
                    if "error" not in r
                    else r["error"]
                )
                res["ceiling"]["sustained"]["first_failure"] = f"{rate:g}/s: {why}"
            if "first_failure" in res["ceiling"]["sustained"] and rate >= 500:
                break  # 50/200/500 are always measured (the table compares them with Parley)
        if "wrk" not in skip and wrk.available():
            log(f"ceiling saturation: wrk, {args.wrk_connections} connections, 5 s")
            w = wrk.run(f"http://127.0.0.1:{port}/webhooks/slack/hello/", seconds=5, connections=args.wrk_connections)
            res["wrk"]["hello"] = w
            log(f"  {json.dumps(w)}")
        procs.stop(hello)
        if "ws" not in skip:
            port = procs.free_port()
            hello_ws = start_gunicorn(
                "hello-ws", "bench.harness.hello_asgi:application", port=port, workers=1, env=env, conf=False
            )
            log(f"ceiling: {args.ws_sockets} idle sockets on one bare worker")
            res["ceiling"]["ws"] = ws_phase(
                f"ws://127.0.0.1:{port}/ws/",
                hello_ws,
                port,
                args.ws_sockets,
                "",
                env,
                hold=3.0,
                deadline=args.ws_deadline,
            )
            procs.stop(hello_ws)


def wait_quiet(pids: list[int], *, timeout: float, busy: float = 0.1) -> bool:
    """Wait until ``pids`` together use less than ``busy`` of a core over a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(procs.cpu_seconds(p) for p in pids)
        time.sleep(1.0)
        if sum(procs.cpu_seconds(p) for p in pids) - before < busy:
            return True
    return False


def pg_xacts(db_url: str) -> int | None:
    """Committed transactions in the bench database so far (each autocommit query is one)."""
    try:
        import psycopg

        name = urlsplit(db_url).path.lstrip("/")
        with psycopg.connect(_admin_dsn(db_url), connect_timeout=5) as conn:
            row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]).fetchone()
            return int(row[0]) if row else None
    except Exception:
        return None


def wait_idle(db_url: str, timeout: float) -> bool:
    """Wait until no inbound message is queued or being handled (the previous phase is done)."""
    import psycopg

    deadline = time.monotonic() + timeout
    sql = "SELECT count(*) FROM conversations_inboundmessage WHERE status IN ('received', 'processing')"
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(db_url.replace("postgres://", "postgresql://", 1), connect_timeout=5) as conn:
                if conn.execute(sql).fetchone()[0] == 0:
                    return True
        except Exception:
            return False
        time.sleep(0.5)
    return False


def r_info_peak(redis_url: str) -> str:
    import redis

    return redis.Redis.from_url(redis_url).info("memory").get("used_memory_peak_human", "?")


def summarize_open(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"  n/a: {r['error']}"
    a, e = r.get("ack") or {}, r.get("e2e") or {}
    out = (
        f"  sent {r.get('sent')} at {r.get('offered_rate', 0):.0f}/s, acks {r.get('statuses')}, "
        f"ack p50 {f(a.get('p50'))} p99 {f(a.get('p99'))} ms"
    )
    if e:
        out += (
            f"; e2e p50 {f(e.get('p50'))} p99 {f(e.get('p99'))} ms, lost {r.get('lost')}, dup {r.get('duplicated')}, "
            f"last reply +{f(r.get('last_reply_after_send_s'))} s"
        )
    if r.get("cpu_s"):
        out += "; cpu " + ", ".join(f"{k} {v:.1f} s" for k, v in r["cpu_s"].items())
    return out


if __name__ == "__main__":
    sys.exit(main())
