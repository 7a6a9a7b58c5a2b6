"""``manage.py run`` as a person starts it (``PORT=8100 make run``): a process of its own on the
embedded defaults, a fresh data folder, its output on a terminal (a pseudo-terminal, read here),
and an HTTP client that goes through setup like that person."""

from __future__ import annotations

import os
import pty
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"\b([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})\b")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningParley:
    def __init__(self, var_dir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            PARLEY_VAR_DIR=str(var_dir),
            SECRET_KEY="",
            LOG_FORMAT="auto",
            # The periodic tasks come round every second, so a few seconds show whether they print.
            PARLEY_DELIVERY_SWEEP_INTERVAL="1",
            PARLEY_SWEEP_INTERVAL="1",
            PYTHONWARNINGS="",
        )
        self._master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def output(self) -> str:
        return ANSI.sub("", b"".join(self._chunks).decode(errors="replace")).replace("\r\n", "\n")

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"manage.py run ended ({self.proc.returncode}):\n{self.output[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"not seen in {timeout} s: {pattern!r}\n{self.output[-3000:]}")

    def setup(self, client: httpx.Client, token: str) -> httpx.Response:
        page = client.get(f"{self.url}/setup/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return client.post(
            f"{self.url}/setup/",
            data={
                "csrfmiddlewaretoken": csrf,
                "setup_token": token,
                "username": "owner",
                "password1": "a-long-unusual-passphrase-42",
                "password2": "a-long-unusual-passphrase-42",
                "tenant_name": "ACME",
                "tenant_slug": "acme",
                "provider": "builtin",
                "bot_name": "Helpdesk",
                "channel_key": "acme-web",
            },
            headers={"Referer": f"{self.url}/setup/"},
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._master)
