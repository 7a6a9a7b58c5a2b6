from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Staff sign-in: the password policy and lockouts, OpenID Connect, session tokens."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Staff sign-in"
