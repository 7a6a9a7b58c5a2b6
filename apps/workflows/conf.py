"""Workflow settings: a Django setting of the same name, else the environment, else the default."""

from __future__ import annotations

import os

from django.conf import settings


def setting(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    if value is None or value == "":
        return default
    return float(value)


def text_setting(name: str, default: str) -> str:
    """Like ``setting`` for text; an empty value is a value (e.g. "no networks")."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    return default if value is None else str(value)
