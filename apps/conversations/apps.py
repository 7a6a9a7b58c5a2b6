from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "apps.conversations"
    label = "conversations"
    verbose_name = _("Conversations")

    def ready(self) -> None:
        from apps.channels import conversation_port
        from apps.core.metrics import register_scrape_collector
        from apps.workflows.delivery import register as register_workflow_replies

        from . import ratings, selectors, services
        from .metrics import InboundQueueCollector, UndeliveredCollector
        from .workflow_replies import WorkflowReplies

        register_scrape_collector(InboundQueueCollector)
        register_scrape_collector(UndeliveredCollector)
        # The channels hand messages and clicks over through this port (they import nothing of ours).
        conversation_port.connect(
            conversation_port.ConversationPort(
                accept_inbound=lambda **kw: services.accept_inbound(**kw),
                record_rating_click=lambda **kw: ratings.button_rating_record(**kw),
                chat_history=lambda **kw: selectors.chat_history(**kw),
                record_chat_rating=lambda **kw: ratings.chat_rating_record(**kw),
            )
        )
        # Workflows tell their results through the pipeline's reply path, given to them here.
        register_workflow_replies(WorkflowReplies())
