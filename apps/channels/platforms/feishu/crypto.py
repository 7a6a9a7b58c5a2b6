"""Feishu / Lark event crypto: the request signature and the Encrypt Key cipher.

Written by hand on ``cryptography`` rather than taken from lark-oapi: the SDK's decryptor is a few
lines over pycryptodome, and adopting it would pull requests, requests-toolbelt, pycryptodome and
websockets into the runtime for ten lines of AES and one SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class DecryptError(ValueError):
    """The ``encrypt`` value is not a ciphertext under this Encrypt Key."""


def signature(timestamp: str, nonce: str, encrypt_key: str, raw_body: bytes) -> str:
    """``X-Lark-Signature``: lowercase hex SHA-256 of timestamp + nonce + encrypt_key + body (not an HMAC)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + raw_body).hexdigest()


def signature_matches(given: str, timestamp: str, nonce: str, encrypt_key: str, raw_body: bytes) -> bool:
    expected = signature(timestamp, nonce, encrypt_key, raw_body)
    return hmac.compare_digest(expected.encode(), (given or "").strip().lower().encode())


def _key(encrypt_key: str) -> bytes:
    return hashlib.sha256(encrypt_key.encode()).digest()


def decrypt(encrypt: str, encrypt_key: str) -> str:
    """The plaintext of ``base64(iv16 || AES-256-CBC(sha256(key), PKCS#7(plaintext)))``.
    Raises ``DecryptError`` for anything that is not such a ciphertext."""
    try:
        blob = base64.b64decode(encrypt, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError("not base64") from exc
    if len(blob) < 32 or len(blob) % 16:
        raise DecryptError("bad ciphertext length")
    decryptor = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(blob[:16])).decryptor()
    padded = decryptor.update(blob[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecryptError("bad padding or encoding (wrong Encrypt Key?)") from exc


def encrypt(plaintext: str, encrypt_key: str, *, iv: bytes | None = None) -> str:
    """The inverse of ``decrypt`` (what Feishu sends); used by tests and tooling."""
    iv = iv or os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()
