import pytest
from django.db import connection

from apps.channels.models import Channel
from apps.llm.models import ModelConfig
from tests.factories import make_channel, make_model

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_dependencies(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_readyz_reports_database_ok(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"]["database"] == "ok"


def test_readyz_names_a_stopped_redis(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: Redis is "down"
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"].startswith("failing")


def test_saved_secrets_are_not_plaintext_in_the_database(tenant, bot):
    model = make_model(tenant, api_key="sk-live-very-secret-key-123456")
    make_channel(bot, platform="telegram", key="acme-tg", credentials={"bot_token": "123:tg-secret-token"})
    with connection.cursor() as cur:
        cur.execute(f"SELECT api_key FROM {ModelConfig._meta.db_table} WHERE id = %s", [model.pk])
        raw_key = cur.fetchone()[0]
        cur.execute(f"SELECT credentials FROM {Channel._meta.db_table} WHERE key = %s", ["acme-tg"])
        raw_creds = cur.fetchone()[0]
    assert "very-secret" not in raw_key and raw_key.startswith("enc1:")
    assert "tg-secret-token" not in raw_creds and raw_creds.startswith("enc1:")
    # and the application reads them back intact
    assert ModelConfig.objects.get(pk=model.pk).api_key == "sk-live-very-secret-key-123456"
    assert Channel.objects.get(key="acme-tg").credentials == {"bot_token": "123:tg-secret-token"}
