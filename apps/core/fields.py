"""Model fields whose values are encrypted in the database column (see ``apps.core.crypto``)."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from . import crypto


class EncryptedTextField(models.TextField):
    """A string stored encrypted. Python sees plaintext; the column holds ``enc1:<fernet token>``.

    The empty string is stored as-is (nothing to protect), so "no secret set" stays queryable.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))

    def value_to_string(self, obj: Any) -> str:
        # Serialization (dumpdata) must never write plaintext secrets.
        return ""


class EncryptedJSONField(models.TextField):
    """A JSON object (e.g. a channel's credentials) stored encrypted as one column."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", dict)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> dict:
        if not value:
            return {}
        return json.loads(crypto.decrypt(value))

    def to_python(self, value: Any) -> dict:
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        if isinstance(value, str) and value.startswith(crypto.PREFIX):
            return json.loads(crypto.decrypt(value))
        return json.loads(value)

    def get_prep_value(self, value: Any) -> str:
        if not value:
            return ""
        return crypto.encrypt(json.dumps(value, sort_keys=True, ensure_ascii=False))

    def value_to_string(self, obj: Any) -> str:
        # Serialization (dumpdata) must never write plaintext secrets.
        return ""
