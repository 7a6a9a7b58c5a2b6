"""Encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``).

Keys come from ``PARLEY_ENCRYPTION_KEYS`` (comma-separated Fernet keys; the first encrypts, all
decrypt, so keys can be rotated). With none set — the embedded default — one key is derived from
``SECRET_KEY`` with HKDF, so changing SECRET_KEY then makes stored secrets unreadable.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "enc1:"


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted with the configured keys (wrong or rotated-out key)."""


def derive_key(secret_key: str) -> bytes:
    """The Fernet key the embedded default derives from ``secret_key`` (HKDF-SHA256). An install that
    relied on it keeps its stored secrets readable by listing it in PARLEY_ENCRYPTION_KEYS."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"parley-secrets-v1", info=b"fernet")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    material = [k.encode() for k in keys] if keys else [derive_key(secret_key)]
    return MultiFernet([Fernet(k) for k in material])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.PARLEY_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise SecretDecryptionError("value is not an encrypted Parley secret")
    try:
        return fernet().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError(
            "cannot decrypt a stored secret: PARLEY_ENCRYPTION_KEYS (or SECRET_KEY) changed"
        ) from exc


def mask_secret(value: str | None) -> str:
    """What the UI shows for a saved secret: never the secret, at most its last four characters."""
    if not value:
        return ""
    if len(value) >= 16:
        return f"•••••••• …{value[-4:]}"
    return "••••••••"
