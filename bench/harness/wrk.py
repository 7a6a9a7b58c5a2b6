"""Saturation throughput with ``wrk`` (Debian package ``wrk``): the most requests per second a
server answers, measured by a C load generator that the Python one cannot match on a busy machine.

For Parley the requests are real signed Slack webhooks, each with its own event id, written into a
Lua script up front (wrk's Lua has no HMAC); signatures stay valid for Slack's 5-minute window,
longer than any run. ``wrk`` is closed-loop (each connection sends its next request when the last
is answered), so this measures the ceiling of the ack path, not latency at a given rate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII text


def signed_requests_script(path: Path, *, url_path: str, secret: str, count: int) -> None:
    """Write a wrk Lua script that sends ``count`` distinct signed Slack message events in turn."""
    run_id = secrets.token_hex(3)
    lines = ["local reqs = {}"]
    stamp = str(int(time.time()))
    for i in range(count):
        ts = f"{stamp}.{i:06d}"
        payload = {
            "type": "event_callback",
            "team_id": "TBENCH",
            "event_id": f"Ev{run_id}W{i:07d}",
            "event_time": int(stamp),
            "authorizations": [{"team_id": "TBENCH", "user_id": "UBENCHBOT", "is_bot": True}],
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": f"DW{run_id.upper()}{i:06d}",
                "user": f"UW{run_id.upper()}{i:06d}",
                "text": f"wrk message {i} [bench:{run_id}-w{i}]",
                "ts": ts,
                "event_ts": ts,
            },
        }
        body = json.dumps(payload, separators=(",", ":"))
        digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
        headers = (
            f'{{["Content-Type"]="application/json", ["X-Slack-Request-Timestamp"]="{stamp}", '
            f'["X-Slack-Signature"]="v0={digest}"}}'
        )
        lines.append(f'reqs[{i + 1}] = wrk.format("POST", {_lua_string(url_path)}, {headers}, {_lua_string(body)})')
    lines += [
        "local i = 0",
        "request = function()",
        f"  i = (i % {count}) + 1",
        "  return reqs[i]",
        "end",
    ]
    path.write_text("\n".join(lines) + "\n")


def run(url: str, *, seconds: int, connections: int, script: Path | None = None) -> dict[str, Any]:
    """``wrk --latency`` against ``url``: requests/s, latency p50/p99 (ms), errors."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    except subprocess.TimeoutExpired:
        return {"error": "wrk did not finish"}
    result: dict[str, Any] = {"connections": connections, "seconds": seconds}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else None
    for label, key in (("50%", "p50"), ("99%", "p99")):
        m = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            result[key] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = int(m.group(1)) if m else None
    return result
