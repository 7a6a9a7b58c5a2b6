"""The compose stack (deploy/compose): valid against the Compose specification's schema (the copy
check-jsonschema ships, offline), nginx + certbot in front, health checks, volumes, settings from
.env; and, where this machine has a Docker daemon, the image built and started."""

import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
PARLEY_ROLES = ("migrate", "web", "worker", "connectors", "beat")


def check_jsonschema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_the_compose_file_follows_the_compose_specification():
    done = check_jsonschema(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_wrong_file(tmp_path):
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["web"]["healthcheck"]["interval"] = ["15s"]
    broken["services"]["nginx"]["restart_policy"] = "always"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_jsonschema(path).returncode != 0


def test_nginx_and_certbot_share_the_challenge_and_the_certificates(compose):
    services = compose["services"]
    nginx, certbot = services["nginx"], services["certbot"]
    assert set(nginx["ports"]) == {"80:80", "443:443"}
    assert "acme:/var/www/parley-acme:ro" in nginx["volumes"]
    assert "acme:/var/www/parley-acme" in certbot["volumes"]
    assert "letsencrypt:/etc/letsencrypt:ro" in nginx["volumes"]
    assert "letsencrypt:/etc/letsencrypt" in certbot["volumes"]
    for mount in nginx["volumes"] + certbot["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (COMPOSE_DIR / source).is_file(), mount
    assert "ports" not in services["web"]  # only nginx is published


def test_every_service_has_a_health_check_or_finishes(compose):
    services = compose["services"]
    for name in ("web", "worker", "nginx", "postgres", "redis"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "connectors", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["nginx"]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_data_and_certificates_live_in_named_volumes(compose):
    assert {"pgdata", "redisdata", "letsencrypt", "acme"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]


def test_settings_come_from_env_and_the_example_names_each_one(compose):
    text = COMPOSE.read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (COMPOSE_DIR / ".env.example").read_text()
    declared = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.M))
    assert needed <= declared, needed - declared
    assert {"SECRET_KEY", "PARLEY_ENCRYPTION_KEYS"} <= declared
    for role in PARLEY_ROLES:
        assert compose["services"][role]["env_file"] == ".env", role


def _docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, check=False)
    return done.returncode == 0 and bool(done.stdout.strip())


@pytest.mark.skipif(not _docker_daemon(), reason="no Docker daemon on this machine")
def test_the_image_builds_and_serves_health():
    tag = "parley:ci-test"
    subprocess.run(["docker", "build", "-q", "-f", "deploy/docker/Dockerfile", "-t", tag, "."], cwd=ROOT, check=True)
    serve = ["python", "manage.py", "run", "--host", "0.0.0.0"]  # the embedded default: SQLite in the container
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8000", tag, *serve],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        port = (
            subprocess.run(["docker", "port", container, "8000"], capture_output=True, text=True, check=True)
            .stdout.split(":")[-1]
            .strip()
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
