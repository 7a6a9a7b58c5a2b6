from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "apps.conversations"
    label = "conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        from apps.core.metrics import register_scrape_collector

        from .metrics import InboundQueueCollector

        register_scrape_collector(InboundQueueCollector)
