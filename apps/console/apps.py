from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The admin console's top layer: dashboard, getting-started page and navigation. It may import
    every other app; no app imports it."""

    name = "apps.console"
    label = "console"
    verbose_name = _("Console")

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.index_title = _("Dashboard")  # the admin home page is the dashboard (dashboard.py)
        admin.site.index_template = "console/index.html"
        admin.site.site_title = "Parley"
