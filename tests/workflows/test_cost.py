"""What workflows cost messages that start none: nothing once a process knows the bot's workflows,
one indexed read for bots with workflows that ask for confirmation."""

from __future__ import annotations

import pytest

from tests.conversations.conftest import REAL_BACKENDS
from tests.conversations.test_pipeline_cost import BUDGET, _statements, _stored

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not REAL_BACKENDS, reason="the single-statement path is PostgreSQL's"),
]


def test_ordinary_messages_pay_nothing_for_workflows(make_setup, make_workflow, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=False)
    _statements(_stored(channel, "m-0", "good morning", chat="chat-0").pk)  # the process learns the bot
    assert _statements(_stored(channel, "m-1", "hello there").pk) <= BUDGET
    assert _statements(_stored(channel, "m-2", "and another thing").pk) <= BUDGET - 1


def test_a_pending_confirmation_costs_one_read(make_setup, make_workflow, platform_api, llm):
    bot, channel = make_setup()
    make_workflow(bot, confirmation_required=True)
    _statements(_stored(channel, "m-0", "good morning", chat="chat-0").pk)
    assert _statements(_stored(channel, "m-1", "hello there").pk) <= BUDGET + 1
    assert _statements(_stored(channel, "m-2", "and another thing").pk) <= BUDGET
    assert platform_api.texts() == ["Hello from the fake model."] * 3
