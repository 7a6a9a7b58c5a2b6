"""``manage.py run`` (what ``make run`` starts) on the embedded defaults, as a real process: it serves
HTTP and also holds the long connections, so a long-connection channel answers without a second
command. The platform is the fake Telegram Bot API on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.connectors import wait_until
from tests.fakes.server import FakeServer
from tests.platforms.telegram.fake import FakeTelegramPolling, telegram_update

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "7026491234:AAHfakeTokenForTheRunCommand_0123456789"
QUESTION = "What are your opening hours?"
ANSWER = "We are open 9:00-18:00, Monday to Friday."


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PARLEY_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="config.settings", **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict[str, str], api_base: str) -> None:
    """A migrated embedded database with a bot that knows one answer and a Telegram channel in
    long-connection mode pointed at the fake Bot API."""
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from django.core.management import call_command
        call_command("migrate", interactive=False, verbosity=0)
        from apps.channels.models import Channel
        from tests.factories import make_bot, make_channel, make_knowledge, make_tenant
        bot = make_bot(make_tenant("run-co"), slug="desk")
        make_knowledge(bot, {QUESTION!r}, {ANSWER!r})
        make_channel(bot, platform="telegram", key="run-telegram", mode=Channel.Mode.LONG_CONNECTION,
                     credentials={{"bot_token": {TOKEN!r}}}, api_base={api_base!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=env, check=True, timeout=120)


def test_run_serves_http_and_answers_a_long_connection_channel_then_stops_cleanly(tmp_path):
    with FakeServer() as http:
        fake = FakeTelegramPolling(http, token=TOKEN)
        env = embedded_env(tmp_path, PARLEY_CONNECTORS_POLL_SECONDS="0.3")
        seed(env, http.url)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run", "--no-migrate", "--port", str(port)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:

            def healthy() -> bool:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                        return resp.status == 200
                except OSError:
                    return False

            wait_until(healthy, 60, "the HTTP server")
            fake.queue(telegram_update(880001, text=QUESTION))
            [sent] = wait_until(lambda: fake.sent, 30, "the answer on Telegram")
            assert sent.json()["chat_id"] == 412503776
            assert "9:00-18:00" in sent.json()["text"]
            wait_until(lambda: 880002 in fake.offsets, 10, "the update to be confirmed")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                output, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
                pytest.fail(f"manage.py run did not stop on SIGINT:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    assert "channel run-telegram: connected" in output
    assert "run_connectors stopped" in output  # connections closed and locks released on the way out
    assert TOKEN not in output


def test_run_refuses_a_malformed_connector_setting_with_a_clear_message(tmp_path):
    env = embedded_env(tmp_path, PARLEY_CONNECTORS_POLL_SECONDS="ten")
    done = subprocess.run(
        [sys.executable, "manage.py", "run", "--no-migrate", "--port", str(free_port())],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PARLEY_CONNECTORS_POLL_SECONDS must be a number of seconds, not 'ten'" in done.stderr
    assert "Traceback" not in done.stderr
