"""Settings of the test suite: ``config.settings`` as it is, given what production must be given.

The production shape (DATABASE_URL and REDIS_URL set, as in CI) refuses to start without its own
SECRET_KEY and PARLEY_ENCRYPTION_KEYS. A test run makes fresh ones, unless the environment already
holds them; they go into the environment, so processes the tests start (workers, web servers) share
them. The embedded default is left alone: it keeps its own key under ``var/``.
"""

import os
import secrets

from cryptography.fernet import Fernet

if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
    os.environ.setdefault("SECRET_KEY", "test-" + secrets.token_urlsafe(60))
    os.environ.setdefault("PARLEY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
# The fake platforms, models and business systems are real servers on this machine's loopback, which
# the production outbound guard refuses: the tests allow it, as an operator allows an on-premise
# server (tests/core/test_netguard.py checks the guard with the production default and no allowance).
os.environ.setdefault("PARLEY_OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
# Tests scrape /metrics without a token; tests/core/test_safe_defaults.py checks production's refusal.
os.environ.setdefault("PARLEY_METRICS_PUBLIC", "true")

from config.settings import *  # noqa: F403
