"""First-run setup: the one-time token and whether setup is still needed."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache

_CACHE_KEY = "parley:setup_done"


def setup_token() -> str:
    """The token /setup/ asks for. Derived from SECRET_KEY, so every process agrees on it and only
    someone who can read the console (or run ``manage.py setup_token``) knows it."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"parley-first-run-setup", hashlib.sha256).hexdigest()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def check_setup_token(candidate: str) -> bool:
    return hmac.compare_digest(candidate.strip().lower().encode(), setup_token().encode())


def setup_needed() -> bool:
    """True while no superuser exists. Cached once setup is done (it never becomes needed again)."""
    if cache.get(_CACHE_KEY):
        return False
    done = get_user_model().objects.filter(is_superuser=True).exists()
    if done:
        cache.set(_CACHE_KEY, True, 300)
    return not done
