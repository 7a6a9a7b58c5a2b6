"""manage.py backup / restore: the database and the keys of its secrets, back after the database is gone."""

from __future__ import annotations

import base64
import json
import os
import stat
import tarfile

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.utils import DatabaseError

from apps.channels.models import Channel
from apps.conversations.models import Conversation, Message
from apps.llm.models import ModelConfig
from tests.factories import make_bot, make_channel, make_model, make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def keys(settings):
    settings.PARLEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return settings.PARLEY_ENCRYPTION_KEYS


@pytest.fixture
def data(keys):
    tenant = make_tenant("acme")
    bot = make_bot(tenant, name="Helpdesk")
    make_model(tenant, api_key="sk-live-model-key-1234")
    channel = make_channel(bot, platform="slack", key="acme-slack", credentials={"bot_token": "xoxb-secret-9876"})
    conv = Conversation.objects.create(tenant=tenant, bot=bot, channel=channel, chat_id="C1", user_id="U1")
    Message.objects.create(conversation=conv, role="user", text="Where is my order 1234?")
    Message.objects.create(conversation=conv, role="assistant", text="It left the warehouse today.")
    return conv


def drop_everything():
    """What losing the database looks like: every table gone."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f'DROP TABLE "{table}"')
            cursor.execute("PRAGMA foreign_keys = ON")


def test_backup_drop_restore_brings_back_conversations_and_readable_secrets(data, tmp_path, capsys):
    archive = tmp_path / "parley.tar.gz"
    call_command("backup", output=archive)
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())
        dump = tar.extractfile(manifest["database"]).read()
    assert {"manifest.json", "keys.env", manifest["database"]} == names
    assert manifest["tables"]["conversations_message"] == 2
    assert b"xoxb-secret-9876" not in dump and b"sk-live-model-key" not in dump  # secrets stay encrypted in it

    drop_everything()
    with pytest.raises(DatabaseError):
        Conversation.objects.count()

    call_command("restore", archive, yes=True)
    out = capsys.readouterr().out
    assert "Stored secrets readable: 2 of 2." in out
    conv = Conversation.objects.get()
    assert list(conv.messages.order_by("id").values_list("role", "text")) == [
        ("user", "Where is my order 1234?"),
        ("assistant", "It left the warehouse today."),
    ]
    assert Channel.objects.get(key="acme-slack").credentials == {"bot_token": "xoxb-secret-9876"}
    assert ModelConfig.objects.get().api_key == "sk-live-model-key-1234"


def test_restore_refuses_other_keys_and_hands_out_the_backups(data, tmp_path, settings, keys):
    archive = tmp_path / "parley.tar.gz"
    call_command("backup", output=archive)
    original = list(keys)
    settings.PARLEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # a new install's own key
    Message.objects.all().delete()

    with pytest.raises(CommandError, match="encryption keys are not among the configured ones"):
        call_command("restore", archive, yes=True)
    assert Message.objects.count() == 0  # refused before anything changed

    keys_file = tmp_path / "keys.env"
    call_command("restore", archive, extract_keys=keys_file)
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    assert f"PARLEY_ENCRYPTION_KEYS={original[0]}" in keys_file.read_text()

    settings.PARLEY_ENCRYPTION_KEYS = original
    call_command("restore", archive, yes=True)
    assert Message.objects.count() == 2


def test_restore_asks_for_confirmation_and_names_a_bad_file(data, tmp_path):
    archive = tmp_path / "parley.tar.gz"
    call_command("backup", output=archive, without_keys=True)
    with tarfile.open(archive) as tar:
        assert "keys.env" not in tar.getnames()
    with pytest.raises(CommandError, match="run again with --yes"):
        call_command("restore", archive)
    assert Message.objects.count() == 2

    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(base64.b64encode(os.urandom(64)))
    with pytest.raises(CommandError, match="is not a Parley backup"):
        call_command("restore", junk, yes=True)
    with pytest.raises(CommandError, match="no such backup"):
        call_command("restore", tmp_path / "missing.tar.gz", yes=True)
