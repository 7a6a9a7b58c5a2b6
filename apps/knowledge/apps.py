from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KnowledgeConfig(AppConfig):
    name = "apps.knowledge"
    label = "knowledge"
    verbose_name = _("Knowledge bases")

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from .models import Document

        def _document_deleted(sender, instance, **kwargs) -> None:
            from .services import bump_version

            bump_version(instance.knowledge_base_id)

        post_delete.connect(_document_deleted, sender=Document, dispatch_uid="knowledge.document_deleted", weak=False)
