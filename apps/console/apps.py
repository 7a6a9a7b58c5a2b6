from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The admin console's top layer: dashboard, getting-started page and navigation. It may import
    every other app; no app imports it."""

    name = "apps.console"
    label = "console"
    verbose_name = _("Console")
