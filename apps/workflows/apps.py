from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = _("Workflows")

    def ready(self) -> None:
        from . import selectors  # noqa: F401 - connects the cache-forgetting signal receivers
