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


@pytest.mark.django_db(transaction=True)
def test_what_the_chat_tells_a_visitor_follows_their_browser_language(chat_channel):
    from asgiref.sync import async_to_sync

    from config.asgi import application

    from .conftest import ORIGIN, Communicator, issue

    token = issue(chat_channel).token

    async def empty_message(language: str) -> str:
        headers = [(b"host", b"parley.example.org"), (b"origin", ORIGIN.encode())]
        headers.append((b"accept-language", language.encode()))
        protocols = ["parley.v1", f"parley.auth.{token}"]
        comm = Communicator(application, "/ws/chat/acme-web/", headers=headers, subprotocols=protocols)
        assert (await comm.connect())[0]
        await comm.receive_json_from()  # history
        await comm.send_json_to({"type": "message", "id": "c-1", "text": "   "})
        frame = await comm.receive_json_from()
        await comm.disconnect()
        assert frame["type"] == "error" and frame["code"] == "empty_message"
        return frame["message"]

    assert async_to_sync(empty_message)("zh-CN,zh;q=0.9,en;q=0.8") == "消息为空。"
    assert async_to_sync(empty_message)("en-US,en;q=0.9,zh;q=0.5") == "The message is empty."
