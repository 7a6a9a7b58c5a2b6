"""Friction: ``make run`` printed only JSON lines, most of them access lines of static files; the
background tasks' lines pushed the setup token out of sight; a raw Python warning about streaming
responses appeared. On a terminal the lines are now short and readable, static files are not
logged, the token stays the last thing printed until someone opens a page, and no warning shows."""

from __future__ import annotations

import time

import httpx
import pytest

from .live import RunningParley, free_port


@pytest.fixture
def parley(tmp_path):
    running = RunningParley(tmp_path / "var", free_port())
    yield running
    running.stop()


def test_the_console_is_for_people(parley):
    token = parley.wait_for(r"setup token:\s+(\S+)").group(1)
    time.sleep(4)  # the periodic tasks (every second here) come round a few times
    after_token = parley.output.split(token, 1)[1]
    assert not [line for line in after_token.splitlines() if line.strip() and "setup_token" not in line], after_token

    with httpx.Client(follow_redirects=True, timeout=60) as client:
        page = client.get(f"{parley.url}/setup/")
        assert page.status_code == 200
        for css in ("/static/parley/console.css", "/static/admin/css/base.css"):
            assert client.get(parley.url + css).status_code == 200
    parley.wait_for(r'"GET /setup/ HTTP/1.1" 200')
    time.sleep(1)
    out = parley.output
    lines = [line for line in out.splitlines() if line.strip()]
    assert not [line for line in lines if line.lstrip().startswith("{")], "JSON lines on a terminal"
    assert "/static/" not in out
    assert "Warning" not in out and "warnings.warn" not in out, out[-2000:]
    assert not [line for line in lines if "WARNING" in line or "ERROR" in line], out[-2000:]
    # The start-up says where to go, and the token is there, after the server's own lines.
    assert out.index("Uvicorn running on") < out.index(token)
    assert f"Open {parley.url}/" in out
