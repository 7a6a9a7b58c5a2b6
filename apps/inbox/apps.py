from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InboxConfig(AppConfig):
    name = "apps.inbox"
    label = "inbox"
    verbose_name = _("Human handoff")

    def ready(self) -> None:
        from apps.conversations.handoff import install
        from apps.core.metrics import register_scrape_collector

        from .gate import InboxHandoffPort
        from .metrics import HandoffQueueCollector

        install(InboxHandoffPort())
        register_scrape_collector(HandoffQueueCollector)
