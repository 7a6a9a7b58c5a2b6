from django.contrib import admin

from apps.core.admin_mixins import TenantScopedAdmin

from .models import Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_path = "id"
    list_display = ("name", "slug", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")

    def get_queryset(self, request):
        qs = admin.ModelAdmin.get_queryset(self, request)
        ids = self._read_ids(request)
        return qs if ids is None else qs.filter(id__in=ids)

    def has_view_permission(self, request, obj=None):
        ids = self._read_ids(request)
        if obj is None:
            return ids is None or bool(ids)
        return self._allows(ids, obj.pk)

    def has_change_permission(self, request, obj=None):
        ids = self._manage_ids(request)
        if obj is None:
            return ids is None or bool(ids)
        return self._allows(ids, obj.pk)

    def has_add_permission(self, request):
        return request.user.is_superuser  # new tenants are created by the platform operator

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        admin.ModelAdmin.save_model(self, request, obj, form, change)

    def get_readonly_fields(self, request, obj=None):
        return () if request.user.is_superuser else ("slug", "is_active")


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    autocomplete_fields = ()
    raw_id_fields = ("user",)
