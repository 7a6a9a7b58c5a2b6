"""Signing workflow calls so the business system can tell they come from Parley.

Every call carries ``X-Parley-Timestamp`` (Unix seconds) and, when the workflow has a signing
secret, ``X-Parley-Signature: v1=<hex>`` — HMAC-SHA256 with the secret as key over
``<timestamp>.<raw body bytes>``. The receiver recomputes it over the body exactly as received,
compares in constant time and refuses timestamps too far from its clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

VERSION = "v1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Parley-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """What a receiver does (documented in docs/workflows.md): the signature matches and the
    timestamp is within ``tolerance_s`` of now."""
    try:
        age = abs(time.time() - int(timestamp))
    except (TypeError, ValueError):
        return False
    if age > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")
