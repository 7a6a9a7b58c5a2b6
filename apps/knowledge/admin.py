"""Knowledge bases in the admin: documents with their state and chunks, and "Ask the knowledge base"
(a question in, the ranked chunks, their scores and the prompt that would be sent out — nothing is
sent to anyone)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin_mixins import TenantScopedAdmin, TenantScopedInline, limit_choices_to_tenants

from . import services
from .ask import preview
from .models import Chunk, Document, KnowledgeBase


class KnowledgeBaseForm(forms.ModelForm):
    class Meta:
        model = KnowledgeBase
        fields = ("tenant", "name", "description", "bots", "embedding_model")

    def clean(self) -> dict:
        cleaned = super().clean()
        tenant = cleaned.get("tenant")
        if tenant is not None:
            if any(bot.tenant_id != tenant.pk for bot in cleaned.get("bots") or []):
                raise ValidationError({"bots": _("Only bots of the knowledge base's own tenant can use it.")})
            model = cleaned.get("embedding_model")
            if model is not None and model.tenant_id != tenant.pk:
                raise ValidationError({"embedding_model": _("This model belongs to another tenant.")})
        return cleaned


class DocumentInline(TenantScopedInline):
    model = Document
    extra = 0
    fields = ("link", "kind", "state_shown", "pages", "indexed_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = False
    verbose_name_plural = _("documents")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("document"))
    def link(self, obj: Document) -> str:
        url = reverse("admin:knowledge_document_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.display_title)

    @admin.display(description=_("state"))
    def state_shown(self, obj: Document) -> str:
        return _document_state(obj)


def _document_state(obj: Document) -> str:
    label = obj.state_label()
    if obj.state == Document.State.FAILED and obj.error:
        return f"{label}: {obj.error}"
    return str(label)


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(TenantScopedAdmin):
    form = KnowledgeBaseForm
    inlines = (DocumentInline,)
    list_display = ("name", "tenant", "embedding_model", "document_count", "ask_link")
    list_filter = ("tenant",)
    search_fields = ("name", "description")
    filter_horizontal = ("bots",)

    def get_queryset(self, request: HttpRequest) -> Any:
        from django.db.models import Count

        return (
            super()
            .get_queryset(request)
            .select_related("tenant", "embedding_model")
            .annotate(n_docs=Count("documents"))
        )

    @admin.display(description=_("documents"))
    def document_count(self, obj: KnowledgeBase) -> int:
        return getattr(obj, "n_docs", 0)

    @admin.display(description=_("ask"))
    def ask_link(self, obj: KnowledgeBase) -> str:
        url = reverse("admin:knowledge_knowledgebase_ask", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Ask the knowledge base"))

    def save_model(self, request: HttpRequest, obj: KnowledgeBase, form: Any, change: bool) -> None:
        model_changed = change and "embedding_model" in form.changed_data
        super().save_model(request, obj, form, change)
        if model_changed:
            count = services.reindex_knowledge_base(obj)
            self.message_user(
                request, gettext("The embedding model changed: %(n)s documents are indexed again.") % {"n": count}
            )

    def get_urls(self) -> list:
        ask = path(
            "<int:object_id>/ask/", self.admin_site.admin_view(self.ask_view), name="knowledge_knowledgebase_ask"
        )
        return [ask, *super().get_urls()]

    def ask_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        kb = self.get_object(request, str(object_id))
        if kb is None or not self.has_view_permission(request, kb):
            raise PermissionDenied
        form = AskForm(request.POST or None, kb=kb)
        result = None
        if request.method == "POST" and form.is_valid():
            result = preview(kb, form.cleaned_data["question"], bot=form.cleaned_data.get("bot"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Ask the knowledge base: %(name)s") % {"name": kb.name},
            "opts": self.model._meta,
            "original": kb,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/knowledge/ask.html", context)


class AskForm(forms.Form):
    question = forms.CharField(label=_("Question"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    bot = forms.ModelChoiceField(
        label=_("As answered by"),
        queryset=None,
        required=False,
        help_text=_("The bot whose threshold and system prompt apply. Empty: no threshold, no system prompt."),
    )

    def __init__(self, *args: Any, kb: KnowledgeBase, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bot"].queryset = kb.bots.filter(tenant_id=kb.tenant_id)


class DocumentForm(forms.ModelForm):
    upload = forms.FileField(
        label=_("File"),
        required=False,
        help_text=_(
            "PDF, DOCX, PPTX, XLSX, Markdown, HTML or TXT. A new file replaces the old one and is indexed again."
        ),
    )

    class Meta:
        model = Document
        fields = ("knowledge_base", "title", "kind", "text", "url", "refresh_hours")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["kind"].disabled = True

    def clean(self) -> dict:
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        upload = cleaned.get("upload")
        if kind == Document.Kind.FILE:
            if upload is not None:
                try:
                    services.check_upload(upload.name, upload.size, getattr(upload, "content_type", "") or "")
                except services.DocumentRejected as exc:
                    raise ValidationError({"upload": str(exc)}) from exc
            elif not self.instance.pk:
                raise ValidationError({"upload": _("Choose a file to upload.")})
        elif kind == Document.Kind.TEXT and not (cleaned.get("text") or "").strip():
            raise ValidationError({"text": _("Paste the text to index.")})
        elif kind == Document.Kind.URL and not cleaned.get("url"):
            raise ValidationError({"url": _("Enter the page's address.")})
        return cleaned


class ChunkInline(TenantScopedInline):
    model = Chunk
    extra = 0
    fields = ("position", "section", "page", "excerpt", "token_count")
    readonly_fields = fields
    can_delete = False
    max_num = 0
    verbose_name_plural = _("chunks (as retrieval sees them)")

    def get_queryset(self, request: HttpRequest) -> Any:
        from django.db.models import F

        return super().get_queryset(request).filter(generation=F("document__live_generation")).order_by("position")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("text"))
    def excerpt(self, obj: Chunk) -> str:
        return obj.text if len(obj.text) <= 400 else obj.text[:400] + " …"


@admin.register(Document)
class DocumentAdmin(TenantScopedAdmin):
    tenant_path = "knowledge_base__tenant"
    form = DocumentForm
    inlines = (ChunkInline,)
    list_display = ("__str__", "knowledge_base", "kind", "state_shown", "pages", "indexed_at")
    list_filter = ("state", "kind", "knowledge_base")
    search_fields = ("title", "filename", "url")
    readonly_fields = ("filename", "state_shown", "pages", "fetched_at", "indexed_at")
    actions = ["reindex"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("knowledge_base").defer("data")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        limit_choices_to_tenants(field, request)
        return field

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        source = ("kind", "upload", "filename", "text", "url", "refresh_hours")
        return (
            (None, {"fields": ("knowledge_base", "title")}),
            (_("Source"), {"fields": source}),
            (_("Indexing"), {"fields": ("state_shown", "pages", "fetched_at", "indexed_at")}),
        )

    @admin.display(description=_("state"))
    def state_shown(self, obj: Document) -> str:
        return _document_state(obj)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        upload = form.cleaned_data.get("upload")
        if upload is not None:
            obj.data = upload.read()
            obj.filename = upload.name[:300]
            obj.content_type = (getattr(upload, "content_type", "") or "")[:200]
        reindex = (
            not change or services.source_changed(obj) or (obj.kind == Document.Kind.URL and "url" in form.changed_data)
        )
        super().save_model(request, obj, form, change)
        if reindex:
            services.schedule_index(obj)
            self.message_user(request, gettext("%(doc)s is queued for indexing.") % {"doc": obj.display_title})

    @admin.action(description=_("Index again"), permissions=["change"])
    def reindex(self, request: HttpRequest, queryset: Any) -> None:
        for doc in queryset:
            services.schedule_index(doc, force=True)
        self.message_user(
            request, gettext("%(n)s documents queued for indexing.") % {"n": queryset.count()}, messages.INFO
        )

    def response_post_save_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        return redirect("admin:knowledge_document_change", obj.pk)
