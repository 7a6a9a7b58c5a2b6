from django.contrib import admin

from .admin_mixins import TenantScopedAdmin
from .models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(TenantScopedAdmin):
    read_only = True
    list_display = ("created_at", "action", "actor", "tenant", "target", "ip")
    list_filter = ("action", "tenant")
    search_fields = ("action", "target", "actor__username")
    date_hierarchy = "created_at"

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail is append-only, for superusers too
