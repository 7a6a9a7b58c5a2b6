"""Knowledge bases in the REST API (``/api/v1/knowledge-bases/``, ``/api/v1/documents/``): list,
upload, state, delete — tenant-scoped like the rest of the API (other tenants' rows are 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.bots.models import Bot
from apps.llm.models import ModelConfig
from apps.tenants.api import TenantField, TenantScopedViewSet
from apps.tenants.selectors import MANAGE_ROLES, tenant_ids_for

from . import services
from .models import Document, KnowledgeBase


def _manageable(request: Any, qs: Any, path: str) -> Any:
    ids = tenant_ids_for(request.user, roles=MANAGE_ROLES) if request else set()
    return qs if ids is None else qs.filter(**{f"{path}__in": ids})


class _BotsField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> Any:
        return _manageable(self.context.get("request"), Bot.objects.all(), "tenant")


class _EmbeddingModelField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> Any:
        qs = ModelConfig.objects.filter(purpose=ModelConfig.Purpose.EMBEDDING)
        return _manageable(self.context.get("request"), qs, "tenant")


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    tenant = TenantField()
    bots = _BotsField(many=True, required=False)
    embedding_model = _EmbeddingModelField(required=False, allow_null=True)
    documents = serializers.IntegerField(source="n_docs", read_only=True)

    class Meta:
        model = KnowledgeBase
        fields = ("id", "tenant", "name", "description", "bots", "embedding_model", "documents", "created_at")
        read_only_fields = ("created_at",)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant = attrs.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is not None:
            if any(bot.tenant_id != tenant.pk for bot in attrs.get("bots") or []):
                raise ValidationError({"bots": "Only bots of the knowledge base's own tenant can use it."})
            model = attrs.get("embedding_model")
            if model is not None and model.tenant_id != tenant.pk:
                raise ValidationError({"embedding_model": "This model belongs to another tenant."})
        return attrs


class KnowledgeBaseViewSet(TenantScopedViewSet):
    """Knowledge bases of your tenants. Changing the embedding model indexes every document again."""

    queryset = KnowledgeBase.objects.select_related("tenant").annotate(n_docs=Count("documents"))
    serializer_class = KnowledgeBaseSerializer

    def perform_update(self, serializer: Any) -> None:
        before = serializer.instance.embedding_model_id
        kb = serializer.save()
        if kb.embedding_model_id != before:
            services.reindex_knowledge_base(kb)


class DocumentSerializer(serializers.ModelSerializer):
    state_label = serializers.CharField(read_only=True)
    chunks = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = (
            "id",
            "knowledge_base",
            "title",
            "kind",
            "filename",
            "url",
            "refresh_hours",
            "state",
            "state_label",
            "progress_done",
            "progress_total",
            "error",
            "pages",
            "chunks",
            "fetched_at",
            "indexed_at",
            "created_at",
        )
        read_only_fields = fields

    def get_chunks(self, obj: Document) -> int:
        return obj.chunks.filter(generation=obj.live_generation).count() if obj.live_generation else 0


class DocumentIn(serializers.Serializer):
    """An upload (multipart ``file``), pasted ``text``, or a ``url`` — exactly one."""

    knowledge_base = serializers.PrimaryKeyRelatedField(queryset=KnowledgeBase.objects.all())
    title = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    file = serializers.FileField(required=False)
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
    url = serializers.URLField(required=False, max_length=1000)
    refresh_hours = serializers.IntegerField(required=False, min_value=0, max_value=24 * 365, default=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["knowledge_base"].queryset = _manageable(
            self.context.get("request"), KnowledgeBase.objects.all(), "tenant"
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("file", "text", "url") if attrs.get(name)]
        if len(given) != 1:
            raise ValidationError("Send exactly one of: file (multipart upload), text, url.")
        return attrs


class DocumentViewSet(TenantScopedViewSet):
    """Documents of your tenants' knowledge bases: ``POST`` uploads (multipart ``file``) or adds
    ``text`` / a ``url``; the answer says its state, which moves queued → indexing → ready | failed.
    ``?knowledge_base=<id>`` filters the list."""

    queryset = Document.objects.select_related("knowledge_base").defer("data", "text").order_by("id")
    serializer_class = DocumentSerializer
    parser_classes = (MultiPartParser, FormParser, JSONParser)
    tenant_path = "knowledge_base__tenant"
    http_method_names = ["get", "post", "delete", "head", "options"]  # a changed source is a new upload

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        kb = self.request.query_params.get("knowledge_base")
        return qs.filter(knowledge_base_id=kb) if kb and kb.isdigit() else qs

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = DocumentIn(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        kb = values["knowledge_base"]
        try:
            if values.get("file"):
                upload = values["file"]
                services.check_upload(upload.name, upload.size, getattr(upload, "content_type", "") or "")
                doc = services.add_file(
                    kb,
                    filename=upload.name,
                    data=upload.read(),
                    content_type=getattr(upload, "content_type", "") or "",
                    title=values["title"],
                )
            elif values.get("text"):
                doc = services.add_text(kb, title=values["title"], text=values["text"])
            else:
                doc = services.add_url(
                    kb, url=values["url"], title=values["title"], refresh_hours=values["refresh_hours"]
                )
        except services.DocumentRejected as exc:
            raise ValidationError({"file": str(exc)}) from exc
        doc.refresh_from_db()
        return Response(DocumentSerializer(doc).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Document) -> None:
        services.delete_document(instance)

    @action(detail=True, methods=["post"])
    def reindex(self, request: Request, pk: str | None = None) -> Response:
        """Index the document again (a URL is fetched again)."""
        doc = self.get_object()
        services.schedule_index(doc, force=True)
        doc.refresh_from_db()
        return Response(DocumentSerializer(doc).data, status=status.HTTP_202_ACCEPTED)
