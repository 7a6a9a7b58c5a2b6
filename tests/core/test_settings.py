"""The production shape refuses to start without its own secrets, and says which variable is wrong.

Each case runs ``manage.py check`` in a fresh process with the production environment (DATABASE_URL
and REDIS_URL set; ``check`` connects to neither), as an operator starting Parley would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "pK3v9-Xq2LmZ8rT1wY6nB4cF0hJ7sD5gA_eU2iO9kP1lQ3zX8vC6bN4mR7tW0yE5"
FERNET_KEY = Fernet.generate_key().decode()


def _example_value(name: str) -> str:
    for line in (ROOT / "deploy" / "parley.env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    raise AssertionError(f"{name} is not in deploy/parley.env.example")


def _check(tmp_path: Path, *, production: bool = True, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "PARLEY_", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"))
    }
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PARLEY_VAR_DIR=str(tmp_path))
    if production:
        base.update(DATABASE_URL="postgres://parley@127.0.0.1:9/parley", REDIS_URL="redis://127.0.0.1:9/0")
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def _refused(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), done.stderr[-2000:]
    return last


def test_without_a_secret_key_production_refuses_and_names_it(tmp_path):
    message = _refused(_check(tmp_path, PARLEY_ENCRYPTION_KEYS=FERNET_KEY))
    assert "SECRET_KEY is not set" in message
    assert not (tmp_path / "secret_key").exists()  # no key quietly generated


def test_the_example_files_placeholder_key_is_refused(tmp_path):
    placeholder = _example_value("SECRET_KEY")
    assert len(placeholder) >= 20  # refused as a placeholder, not merely for its length
    message = _refused(_check(tmp_path, SECRET_KEY=placeholder, PARLEY_ENCRYPTION_KEYS=FERNET_KEY))
    assert "SECRET_KEY is a placeholder" in message
    assert placeholder not in message


@pytest.mark.parametrize("placeholder", ["django-insecure-" + "a1b2c3d4e5" * 6, "ChangeMe" + "9f8e7d6c5b" * 6])
def test_other_well_known_placeholders_are_refused(tmp_path, placeholder):
    message = _refused(_check(tmp_path, SECRET_KEY=placeholder, PARLEY_ENCRYPTION_KEYS=FERNET_KEY))
    assert "SECRET_KEY is a placeholder" in message


@pytest.mark.parametrize(
    "key,problem",
    [
        ("s3cr3t-but-only-thirty-two-chars", "SECRET_KEY is too short (32 characters)"),
        ("ab" * 40, "too few characters"),
    ],
)
def test_a_short_or_repetitive_key_is_refused(tmp_path, key, problem):
    message = _refused(_check(tmp_path, SECRET_KEY=key, PARLEY_ENCRYPTION_KEYS=FERNET_KEY))
    assert problem in message
    assert key not in message  # the value itself never appears


def test_production_requires_explicit_encryption_keys(tmp_path):
    message = _refused(_check(tmp_path, SECRET_KEY=GOOD_KEY))
    assert "PARLEY_ENCRYPTION_KEYS is not set" in message


def test_the_example_files_empty_encryption_keys_are_refused(tmp_path):
    assert _example_value("PARLEY_ENCRYPTION_KEYS") == ""
    message = _refused(_check(tmp_path, SECRET_KEY=GOOD_KEY, PARLEY_ENCRYPTION_KEYS=""))
    assert "PARLEY_ENCRYPTION_KEYS is not set" in message


def test_an_encryption_key_that_is_not_a_fernet_key_is_refused(tmp_path):
    bad = "not-a-fernet-key"
    message = _refused(_check(tmp_path, SECRET_KEY=GOOD_KEY, PARLEY_ENCRYPTION_KEYS=f"{FERNET_KEY},{bad}"))
    assert "PARLEY_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key" in message
    assert bad not in message and FERNET_KEY not in message


def test_production_with_its_own_secrets_starts(tmp_path):
    done = _check(tmp_path, SECRET_KEY=GOOD_KEY, PARLEY_ENCRYPTION_KEYS=FERNET_KEY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "System check identified no issues" in done.stdout


def test_the_embedded_default_still_makes_and_keeps_its_own_key(tmp_path):
    """No environment at all: the key is generated under var/ and the encryption key derived from it."""
    first = _check(tmp_path, production=False)
    assert first.returncode == 0, first.stderr[-2000:]
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert _check(tmp_path, production=False).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_the_upgrade_recipe_keeps_secrets_saved_under_the_derived_key_readable(settings):
    """docs/security.md: PARLEY_ENCRYPTION_KEYS=<new key>,<key derived from SECRET_KEY>."""
    from apps.core.crypto import decrypt, derive_key, encrypt

    settings.PARLEY_ENCRYPTION_KEYS = []
    saved_before = encrypt("sk-saved-before-the-upgrade")
    settings.PARLEY_ENCRYPTION_KEYS = [FERNET_KEY, derive_key(settings.SECRET_KEY).decode()]
    assert decrypt(saved_before) == "sk-saved-before-the-upgrade"
    saved_after = encrypt("sk-saved-after")
    settings.PARLEY_ENCRYPTION_KEYS = [FERNET_KEY]  # the derived key dropped once all are re-saved
    assert decrypt(saved_after) == "sk-saved-after"
