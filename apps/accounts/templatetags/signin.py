"""``{% signin_options next %}`` on the admin login page: the single sign-on button when a provider
is configured, and a note when password sign-in is for superusers only."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts.oidc import oidc_config

register = template.Library()


@register.inclusion_tag("admin/signin_options.html")
def signin_options(next_url: str = "") -> dict[str, Any]:
    config = oidc_config()
    start = reverse("oidc-start")
    if next_url:
        start += "?" + urlencode({"next": next_url})
    return {
        "oidc_label": config.label if config is not None else "",
        "oidc_start_url": start,
        "password_superusers_only": settings.PASSWORD_SIGNIN == "superusers",
    }
