"""Friction: the first ``apply`` of an unedited ``export`` reported a change. An install made by
setup and the admin, exported and applied again as it is, reports no change and changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.bots.models import Bot
from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from apps.setup.services import setup_token
from tests.fakes.llm import FakeOpenAI

pytestmark = pytest.mark.django_db


def test_applying_an_unedited_export_reports_no_change(client, tmp_path, capsys):
    with FakeOpenAI() as fake:
        resp = client.post(
            "/setup/",
            {
                "setup_token": setup_token(),
                "username": "owner",
                "password1": "a-long-unusual-passphrase-42",
                "password2": "a-long-unusual-passphrase-42",
                "tenant_name": "ACME 公司",
                "tenant_slug": "acme",
                "provider": "openai",
                "endpoint": fake.url,
                "api_key": "sk-test-0001",
                "model_name": "glm-4-turbo",
                "bot_name": "Helpdesk",
                "channel_key": "acme-web",
            },
        )
    assert resp.status_code == 302
    # and a channel and a knowledge entry added in the admin
    bot = Bot.objects.get()
    add = client.post(
        reverse("admin:im_channels_channel_add"),
        {
            "bot": bot.pk,
            "platform": "feishu",
            "key": "acme-feishu",
            "name": "Feishu",
            "mode": "webhook",
            "enabled": "on",
            "api_base": "",
            "allowed_origins": "",
            "credentials": '{"app_id": "cli_1", "app_secret": "app-secret-1", "verification_token": "v-token"}',
        },
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    bot.knowledge.create(question="Opening hours?", answer="9 to 5.")
    before = {
        "models": list(ModelConfig.objects.values_list("pk", "updated_at")),
        "channels": list(Channel.objects.values_list("pk", "updated_at")),
    }
    capsys.readouterr()
    call_command("export")
    exported = tmp_path / "parley.yaml"
    exported.write_text(capsys.readouterr().out)

    call_command("apply", "-f", str(exported))
    out = capsys.readouterr().out
    assert "No changes." in out, out
    assert before == {
        "models": list(ModelConfig.objects.values_list("pk", "updated_at")),
        "channels": list(Channel.objects.values_list("pk", "updated_at")),
    }
