"""Model fields whose values are encrypted in the database column (see ``apps.core.crypto``), and the
one field for an address Parley calls (a model's endpoint, a channel's API base)."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

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


# --- Endpoints: the one check of a URL Parley is told to call -----------------------------------------
_PRIVATE_HOST = re.compile(r"^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|\[?::1\]?)")


def endpoint_problem(value: str) -> str:
    """Why ``value`` is not an address Parley can call ("" when it is). One message per mistake,
    the same in setup, the admin and config files: a URL without ``http://``/``https://`` gets
    the URL it should have been; another scheme is named; anything else is Django's URL check."""
    value = (value or "").strip()
    if not value:
        return ""
    if "://" not in value:
        # A server on this machine or network usually speaks plain HTTP; a public API, HTTPS.
        scheme = "http" if _PRIVATE_HOST.match(value.lower()) else "https"
        return str(_("Add http:// or https:// at the start, e.g. %(url)s") % {"url": f"{scheme}://{value}"})
    scheme = value.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        return str(_("Only http:// and https:// addresses can be used, not %(scheme)s://.") % {"scheme": scheme[:20]})
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        return str(_("This is not a valid address, e.g. https://api.openai.com/v1"))
    return ""


def validate_endpoint(value: str) -> None:
    problem = endpoint_problem(value)
    if problem:
        raise ValidationError(problem, code="endpoint")


class EndpointFormField(forms.CharField):
    """A URL field that keeps what was typed (no ``https://`` added behind the user's back) and
    checks it with ``validate_endpoint`` alone."""

    widget = forms.URLInput
    default_validators = [validate_endpoint]


class EndpointField(models.URLField):
    """A model's URL to call: ``validate_endpoint`` instead of the stock URL check, and its form
    field is ``EndpointFormField``."""

    default_validators = [validate_endpoint]

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": EndpointFormField, **kwargs})
