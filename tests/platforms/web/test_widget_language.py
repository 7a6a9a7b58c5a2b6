"""The widget speaks the visitor's language: /widget.js carries its texts translated for the
browser's Accept-Language, and every text the script shows is in the catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from apps.channels.platforms.web.texts import WIDGET_TEXTS

WIDGET = Path(__file__).resolve().parents[3] / "static" / "parley" / "widget.js"


def _texts(body: str) -> dict:
    """The widget's TEXTS table as served."""
    return json.loads(re.search(r"var TEXTS = (\{.*?\});\n", body).group(1))


@pytest.mark.django_db
def test_a_chinese_browser_gets_the_widget_in_chinese_and_an_english_one_in_english(client):
    zh = client.get("/widget.js", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    en = client.get("/widget.js", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert zh.status_code == en.status_code == 200
    assert "Accept-Language" in zh["Vary"]
    assert zh["ETag"] != en["ETag"]  # a cache keeps one copy per language
    table = _texts(zh.content.decode())
    assert table["Send"] == "发送" and table["Type a message…"]
    assert set(table) == set(WIDGET_TEXTS), set(WIDGET_TEXTS) - set(table)  # every text has Chinese
    assert _texts(en.content.decode()) == {}


def test_every_text_the_widget_shows_is_in_the_catalogue():
    shown = set(re.findall(r'\bt\("([^"]+)"\)', WIDGET.read_text()))
    assert shown and shown <= set(WIDGET_TEXTS), shown - set(WIDGET_TEXTS)
    # No English text written outside t(): aria labels, titles, placeholders and statuses.
    bare = re.findall(
        r'(?:setStatus|textContent =|title =|placeholder =|"aria-label",)\s*\(?\s*"([A-Z][^"]+)"', WIDGET.read_text()
    )
    assert not bare, bare
