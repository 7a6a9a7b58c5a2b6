from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .admin_mixins import TenantScopedAdmin
from .models import AuditLog
from .signin import unlock_signin


@admin.register(AuditLog)
class AuditLogAdmin(TenantScopedAdmin):
    read_only = True
    list_display = ("created_at", "action", "actor", "tenant", "target", "ip")
    list_filter = ("action", "tenant")
    search_fields = ("action", "target", "actor__username")
    date_hierarchy = "created_at"

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail is append-only, for superusers too


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Django's user admin, plus ending a password sign-in lockout (``signin.py``)."""

    actions = ["unlock_signin"]

    @admin.action(description="Clear failed sign-ins and end a lockout")
    def unlock_signin(self, request, queryset):
        names = list(queryset.values_list("username", flat=True))
        for username in names:
            unlock_signin(username=username, actor=request.user)
        self.message_user(
            request,
            f"Sign-in unlocked for {len(names)} user(s): {', '.join(names[:20])}{' …' if len(names) > 20 else ''}.",
            messages.SUCCESS,
        )
