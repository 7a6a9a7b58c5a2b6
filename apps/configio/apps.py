from django.apps import AppConfig


class ConfigIoConfig(AppConfig):
    """Configuration as code: ``manage.py export`` writes a tenant's setup as YAML, ``apply`` reads it back."""

    name = "apps.configio"
    label = "configio"
    verbose_name = "Configuration as code"
