"""Shared fixtures for platform adapter tests.

``answering_bot`` answers "What are your opening hours?" from a knowledge entry, so a message that
goes through the whole pipeline gets a deterministic answer without a model call.
"""

from __future__ import annotations

import pytest

from apps.conversations.models import InboundMessage
from tests.factories import make_bot, make_channel, make_knowledge, make_tenant

QUESTION = "What are your opening hours?"
ANSWER = "We are open **9:00–18:00**, Monday to Friday."


@pytest.fixture
def answering_bot(db):
    tenant = make_tenant("im-co")
    bot = make_bot(tenant, slug="support")
    make_knowledge(bot, QUESTION, ANSWER)
    return bot


@pytest.fixture
def live(transactional_db, settings):
    """Parley served by a real uvicorn running ``config.asgi``, as in production. Accepted messages
    are published to the broker (no worker runs here: a webhook's job ends when a message is
    stored, enqueued and acknowledged)."""
    from tests.platforms.web.live import LiveParley

    settings.TASKS_MODE = "celery"
    server = LiveParley().start()
    yield server
    server.stop()


@pytest.fixture
def stored():
    """How many inbound messages were stored (anything a rejected request left behind shows here)."""
    return lambda: InboundMessage.objects.count()


FEISHU_CREDENTIALS = {
    "app_id": "cli_9f5343c580712000",
    "app_secret": "dskLLdkasdjlasdKK3nD8rGv1lKdqT2x",
    "verification_token": "rvaYgkR4vZ5UHMYi1f4n7bYcaYkc9u2c",
    "encrypt_key": "kudryavka-test-encrypt-key",
}
WECOM_CREDENTIALS = {
    "corp_id": "ww1436e0e65a779aee",
    "agent_id": "1000002",
    "secret": "wecom-app-secret-for-tests-000000000000000",
    "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
}
DINGTALK_CREDENTIALS = {
    "client_id": "dingabcdefgh12345678",
    "client_secret": "gS0xYpQ8b2Lk9Zr7Tf3Wm1Hn5Vc4Jd6Ue0Ai8Oq2Rs7Xt3Yv",
    "robot_code": "dingabcdefgh12345678",
}


@pytest.fixture
def feishu_channel(answering_bot, fake_server):
    return make_channel(
        answering_bot,
        platform="feishu",
        key="feishu-main",
        credentials=dict(FEISHU_CREDENTIALS),
        api_base=fake_server.url,
    )


@pytest.fixture
def wecom_channel(answering_bot, fake_server):
    return make_channel(
        answering_bot, platform="wecom", key="wecom-main", credentials=dict(WECOM_CREDENTIALS), api_base=fake_server.url
    )


@pytest.fixture
def dingtalk_channel(answering_bot, fake_server):
    return make_channel(
        answering_bot,
        platform="dingtalk",
        key="dingtalk-main",
        credentials=dict(DINGTALK_CREDENTIALS),
        api_base=fake_server.url,
    )
