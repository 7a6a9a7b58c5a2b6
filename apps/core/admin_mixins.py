"""Tenant scoping for Django Admin.

Every tenant-owned ModelAdmin inherits ``TenantScopedAdmin`` and names the path from its model to
the tenant (``tenant_path``). Querysets, object access, foreign-key choices and saves are all
limited to the tenants the user belongs to: owners and admins manage, reviewers read only what
``reviewer_can_view`` allows, superusers see every tenant. Model permissions are not used for
tenant users; memberships are the source of truth.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from apps.core.crypto import mask_secret
from apps.tenants.selectors import MANAGE_ROLES, READ_ROLES, manageable_users, sees_one_tenant, tenant_ids_for


def tenant_id_of(obj: Any, path: str) -> int | None:
    """Follow ``path`` ("bot__tenant") from ``obj`` to the tenant's id."""
    parts = path.split("__")
    for part in parts[:-1]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return getattr(obj, f"{parts[-1]}_id", None)


class TenantScopedAdmin(ModelAdmin):  # Unfold's ModelAdmin: the console's theme (docs/console.md)
    tenant_path: str = "tenant"
    reviewer_can_view: bool = False
    #: Read-only for everyone but superusers (e.g. conversation logs).
    read_only: bool = False
    list_per_page = 50
    show_full_result_count = False  # never COUNT(*) huge tables for the paginator's "N total"

    # --- who may do what -------------------------------------------------------------------
    def _read_ids(self, request: HttpRequest) -> set[int] | None:
        roles = READ_ROLES if self.reviewer_can_view else MANAGE_ROLES
        return tenant_ids_for(request.user, roles=roles)

    def _manage_ids(self, request: HttpRequest) -> set[int] | None:
        return tenant_ids_for(request.user, roles=MANAGE_ROLES)

    @staticmethod
    def _allows(ids: set[int] | None, tenant_id: int | None) -> bool:
        return ids is None or (tenant_id is not None and tenant_id in ids)

    def has_module_permission(self, request: HttpRequest) -> bool:
        ids = self._read_ids(request)
        return ids is None or bool(ids)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        ids = self._read_ids(request)
        if obj is None:
            return ids is None or bool(ids)
        return self._allows(ids, tenant_id_of(obj, self.tenant_path))

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if self.read_only and not request.user.is_superuser:
            return False
        ids = self._manage_ids(request)
        if obj is None:
            return ids is None or bool(ids)
        return self._allows(ids, tenant_id_of(obj, self.tenant_path))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        if self.read_only:
            return False
        ids = self._manage_ids(request)
        return ids is None or bool(ids)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_change_permission(request, obj)

    # --- what they see ---------------------------------------------------------------------
    def get_list_display(self, request: HttpRequest) -> Any:
        # A tenant column that can only ever say one name is a column of width lost (1366 px screens).
        shown = super().get_list_display(request)
        if "tenant" in shown and sees_one_tenant(request.user):
            return tuple(c for c in shown if c != "tenant")
        return shown

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Every "By <related>" filter lists only rows the user's own visible rows point to (Django's
        default lists every row of the related table: every tenant's bots, models, names); a
        "By tenant" filter is dropped for someone who sees one tenant."""
        scoped = []
        one_tenant = sees_one_tenant(request.user)
        for spec in super().get_list_filter(request):
            path = spec[0] if isinstance(spec, (tuple, list)) else spec
            field = _last_field(self.model, path) if isinstance(path, str) else None
            if field is not None and field.is_relation and field.related_model is not None:
                if one_tenant and field.related_model._meta.label_lower == "tenants.tenant":
                    continue
                spec = (path, admin.RelatedOnlyFieldListFilter)
            scoped.append(spec)
        return scoped

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        ids = self._read_ids(request)
        if ids is None:
            return qs
        return qs.filter(**{f"{self.tenant_path}__in": ids})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        limit_choices_to_tenants(field, request)
        return field

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        limit_choices_to_tenants(field, request)
        return field

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if not self._allows(self._manage_ids(request), tenant_id_of(obj, self.tenant_path)):
            raise PermissionDenied(_("You cannot save objects of another tenant."))
        super().save_model(request, obj, form, change)


# Related models a choice list may offer, and their path to the tenant.
_TENANT_PATHS = {
    "tenants.tenant": "id",
    "llm.modelconfig": "tenant",
    "bots.bot": "tenant",
    "im_channels.channel": "bot__tenant",
    "conversations.conversation": "tenant",
    "workflows.workflow": "tenant",
    "knowledge.knowledgebase": "tenant",
}


def _last_field(model: type[Model], path: str) -> Any:
    try:
        return get_fields_from_path(model, path)[-1]
    except (FieldDoesNotExist, admin.utils.NotRelationField):
        return None


def _tenant_path_of(model: type[Model]) -> str | None:
    """How rows of ``model`` reach their tenant: the table above, else the path its tenant-scoped
    admin names, else a ``tenant`` field of its own."""
    label = model._meta.label_lower
    if label in _TENANT_PATHS:
        return _TENANT_PATHS[label]
    model_admin = admin.site._registry.get(model)
    if isinstance(model_admin, TenantScopedAdmin):
        return model_admin.tenant_path
    try:
        model._meta.get_field("tenant")
    except FieldDoesNotExist:
        return None
    return "tenant"


def limit_choices_to_tenants(field: Any, request: HttpRequest) -> None:
    """Limit a ModelChoiceField's queryset to rows of the user's manageable tenants (people: to
    those the user may manage; other tables a tenant user has no business choosing from: none)."""
    if field is None or not hasattr(field, "queryset") or field.queryset is None:
        return
    ids = tenant_ids_for(request.user, roles=MANAGE_ROLES)
    if ids is None:
        return
    model = field.queryset.model
    if model._meta.label_lower == _user_label():
        field.queryset = field.queryset.filter(pk__in=manageable_users(request.user).values("pk"))
        return
    path = _tenant_path_of(model)
    if path is None:
        field.queryset = field.queryset.none()
        return
    field.queryset = field.queryset.filter(**{f"{path}__in": ids})


def _user_label() -> str:
    from django.contrib.auth import get_user_model

    return get_user_model()._meta.label_lower


class TenantScopedInline(TabularInline):
    """Inline whose foreign-key choices are limited like the parent admin's."""

    extra = 0

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        limit_choices_to_tenants(field, request)
        return field

    def _parent_allows(self, request: HttpRequest, obj: Model | None) -> bool:
        ids = tenant_ids_for(request.user, roles=MANAGE_ROLES)
        return ids is None or bool(ids)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_allows(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_allows(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_allows(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._parent_allows(request, obj)


class SecretInput(forms.PasswordInput):
    """Never renders the stored value; an empty submission keeps the saved secret."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})}, render_value=False)


def secret_form_field(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(label=label, required=False, widget=SecretInput(), strip=True, help_text=help_text)


class SecretFieldsFormMixin:
    """For ModelForms with encrypted text fields listed in ``secret_fields``: the field renders
    empty with the masked saved value as help text, and a blank submission keeps the saved value."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            saved = getattr(instance, name, "") if instance is not None and instance.pk else ""
            field = self.fields[name]
            field.widget = SecretInput()
            field.required = False
            hint = (
                _("Saved: %(masked)s. Leave empty to keep it.") % {"masked": mask_secret(saved)}
                if saved
                else _("Not set.")
            )
            field.help_text = f"{hint} {field.help_text}".strip()

    def clean(self) -> dict:
        cleaned = super().clean()
        instance = getattr(self, "instance", None)
        for name in self.secret_fields:
            if not cleaned.get(name) and instance is not None and instance.pk:
                cleaned[name] = getattr(instance, name)
        return cleaned
