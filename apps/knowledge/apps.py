from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KnowledgeConfig(AppConfig):
    name = "apps.knowledge"
    label = "knowledge"
    verbose_name = _("Knowledge bases")

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete

        from .models import Document, KnowledgeBase

        def _document_deleted(sender, instance, **kwargs) -> None:
            from .services import bump_version

            bump_version(instance.knowledge_base_id)

        post_delete.connect(_document_deleted, sender=Document, dispatch_uid="knowledge.document_deleted", weak=False)

        def _attachments_changed(**kwargs) -> None:
            from .retrieval import forget_attachments

            forget_attachments()

        m2m_changed.connect(
            _attachments_changed, sender=KnowledgeBase.bots.through, dispatch_uid="knowledge.attached", weak=False
        )
        post_delete.connect(_attachments_changed, sender=KnowledgeBase, dispatch_uid="knowledge.kb_deleted", weak=False)
