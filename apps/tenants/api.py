"""REST API building blocks: tenant scoping for viewsets (same rules as the admin)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions, serializers, viewsets

from .models import Tenant
from .selectors import MANAGE_ROLES, READ_ROLES, tenant_ids_for


class TenantScopedViewSet(viewsets.ModelViewSet):
    """A viewset whose rows are those of the caller's tenants. Reads need any membership role
    (reviewers only where ``reviewer_can_read``); writes need owner or admin of the row's tenant.
    Rows of other tenants are simply not there (404), never "forbidden"."""

    tenant_path = "tenant"
    reviewer_can_read = False
    permission_classes = [permissions.IsAuthenticated]

    def _ids(self, write: bool) -> set[int] | None:
        roles = MANAGE_ROLES if write or not self.reviewer_can_read else READ_ROLES
        return tenant_ids_for(self.request.user, roles=roles)

    def get_queryset(self) -> Any:
        qs = super().get_queryset()
        write = self.request.method not in permissions.SAFE_METHODS
        ids = self._ids(write)
        return qs if ids is None else qs.filter(**{f"{self.tenant_path}__in": ids})

    def manageable_tenant_ids(self) -> set[int] | None:
        return self._ids(True)


class TenantField(serializers.PrimaryKeyRelatedField):
    """A tenant the caller manages (other tenants are rejected as "does not exist")."""

    def get_queryset(self) -> Any:
        request = self.context.get("request")
        ids = tenant_ids_for(request.user, roles=MANAGE_ROLES) if request else set()
        qs = Tenant.objects.all()
        return qs if ids is None else qs.filter(id__in=ids)


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ("id", "slug", "name", "is_active", "created_at")
        read_only_fields = fields


class TenantViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TenantSerializer
    queryset = Tenant.objects.all()

    def get_queryset(self) -> Any:
        ids = tenant_ids_for(self.request.user, roles=READ_ROLES)
        qs = super().get_queryset()
        return qs if ids is None else qs.filter(id__in=ids)
