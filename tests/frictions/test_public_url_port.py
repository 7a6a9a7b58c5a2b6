"""Friction: after ``PORT=8100 make run`` every URL the product showed (the web-chat link, the
webhook URLs to paste into a platform's console, rating links) said port 8000."""

from __future__ import annotations

import re

import httpx
import pytest

from .live import RunningParley, free_port


@pytest.fixture
def parley(tmp_path):
    running = RunningParley(tmp_path / "var", free_port())
    yield running
    running.stop()


def test_urls_on_the_pages_name_the_port_parley_runs_on(parley):
    token = parley.wait_for(r"setup token:\s+(\S+)").group(1)
    with httpx.Client(follow_redirects=True, timeout=60) as client:
        done = parley.setup(client, token)
        assert done.url.path == "/admin/start/getting-started/", done.text[:2000]
        start = done.text
        channel = client.get(f"{parley.url}/admin/im_channels/channel/1/change/").text
    shown = set(re.findall(r"https?://127\.0\.0\.1:\d+/[\w/.-]*", start + channel))
    assert f"{parley.url}/chat/acme-web/" in shown, shown
    assert any(u.startswith(f"{parley.url}/webhooks/feishu/") for u in shown), shown
    assert not [u for u in shown if not u.startswith(parley.url + "/")], shown
