"""The frictions a new user met (issue 16), one test each: every test asserts what that person
notices, through the pages, the commands and the web chat they used."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, make_user


@pytest.fixture
def setup_done(db):
    """First-run setup is over: the admin is open."""
    return make_user("root", superuser=True)


def login(client, user) -> None:
    assert client.login(username=user.username, password=PASSWORD)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
