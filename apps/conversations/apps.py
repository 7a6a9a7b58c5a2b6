from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "apps.conversations"
    label = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        from apps.core.metrics import register_scrape_collector

        from .metrics import InboundQueueCollector, UndeliveredCollector

        register_scrape_collector(InboundQueueCollector)
        register_scrape_collector(UndeliveredCollector)
