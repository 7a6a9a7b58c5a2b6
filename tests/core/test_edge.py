"""Bad input at the edge (apps/core/edge.py): a URL with a NUL or another control character is a 404
(a query with one a 400; a WebSocket closed with 4404) before any database query — through Django,
through the ASGI webhook lane of a real uvicorn, and on the web-chat socket — and random paths under
every public route never answer 500."""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_tenant, make_user

FUZZ = settings(
    max_examples=int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: The public doors that look a channel key up, as (method, path template).
KEYED = [
    ("post", "/webhooks/slack/{}/"),
    ("post", "/webhooks/telegram/{}/"),
    ("get", "/chat/{}/"),
    ("post", "/api/v1/webchat/{}/token"),
]
BAD_KEYS = ["%00", "acme%00", "%00acme-web", "a%01b", "%7F", "%C2%85", "%0A", "acme-web%00", "%C2%9F"]


@pytest.fixture
def channels(transactional_db):
    bot = make_bot(make_tenant("acme"))
    make_channel(bot, platform="web", key="acme-web", allowed_origins="https://shop.example.com\n")
    make_channel(bot, platform="slack", key="acme-slack", credentials={"signing_secret": "s" * 32, "bot_token": "x"})
    return bot


def _request(client, method: str, path: str):
    if method == "get":
        return client.get(path)
    return client.post(path, data=b"{}", content_type="application/json")


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("method,template", KEYED)
@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_control_character_in_a_key_is_a_404_before_any_query(
    client, channels, method, template, key, caplog, django_assert_max_num_queries
):
    path = template.format(key)
    with django_assert_max_num_queries(0):
        response = _request(client, method, path)
    assert response.status_code == 404, path
    assert not _errors(caplog)
    assert InboundMessage.objects.count() == 0


def test_a_nul_in_a_query_is_a_400_even_for_a_signed_in_admin(client, channels, caplog):
    client.force_login(make_user("root", superuser=True))
    assert client.get("/admin/bots/bot/?q=%00").status_code == 400
    assert client.get("/admin/bots/bot/?q=acme%0Dx%0A").status_code == 200  # line breaks in a text area are fine
    assert not _errors(caplog)


def test_the_webhook_lane_and_pages_of_a_real_server_refuse_a_nul(live, channels, caplog):
    for method, template in KEYED:
        response = httpx.request(method, live.url + template.format("%00"), content=b"{}", timeout=30)
        assert response.status_code == 404, template
    assert httpx.get(live.url + "/chat/acme-web/?x=%00", timeout=30).status_code == 400
    assert httpx.get(live.url + "/chat/acme-web/", timeout=30).status_code == 200
    assert not _errors(caplog)
    assert InboundMessage.objects.count() == 0


@pytest.fixture
def live(transactional_db):
    from tests.platforms.web.live import LiveParley

    server = LiveParley().start()
    yield server
    server.stop()


def _ws_connect(path: str):
    from config.asgi import application
    from tests.platforms.web.conftest import Communicator

    async def attempt():
        comm = Communicator(application, path, headers=[(b"origin", b"https://shop.example.com")])
        try:
            return await comm.connect()
        finally:
            await comm.disconnect()

    return asyncio.run(attempt())


SOCKET_PATHS = ["/ws/nothing/", "/ws/chat//", "/ws/chat/%00/", "/ws/chat/a%00/", "/ws/chat/%1B/", "/ws/chat/x/?t=%00"]


@pytest.mark.parametrize("path", SOCKET_PATHS)
def test_a_chat_socket_with_a_control_character_is_closed_with_4404(channels, path, caplog):
    connected, code = _ws_connect(path)
    assert (connected, code) == (False, 4404)
    assert not _errors(caplog)


segments = st.text(min_size=0, max_size=24)
prefixes = st.sampled_from(["/webhooks/slack/", "/webhooks/feishu/", "/chat/", "/api/v1/webchat/", "/admin/", "/"])
suffixes = st.sampled_from(["/", "/token", "", "/x/"])


@FUZZ
@given(prefix=prefixes, segment=segments, suffix=suffixes, method=st.sampled_from(["get", "post"]))
def test_random_paths_under_every_public_route_never_answer_500(
    client, channels, prefix, segment, suffix, method, caplog
):
    caplog.clear()
    path = prefix + quote(segment, safe="") + suffix
    response = _request(client, method, path)
    assert response.status_code < 500, path
    assert not _errors(caplog), path
    if any(ord(ch) < 32 or ord(ch) == 127 or 0x80 <= ord(ch) <= 0x9F for ch in segment):
        assert response.status_code == 404, path


@settings(FUZZ, max_examples=max(10, FUZZ.max_examples // 3))
@given(segment=segments)
def test_random_chat_socket_keys_never_crash_the_consumer(channels, segment, caplog):
    caplog.clear()
    connected, code = _ws_connect("/ws/chat/" + quote(segment, safe="") + "/")
    assert not connected or segment == "acme-web"
    assert not _errors(caplog)
    if not segment or any(ord(ch) < 32 or ord(ch) == 127 for ch in segment):
        assert code == 4404  # no route, or a control character
