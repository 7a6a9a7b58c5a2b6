from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .signin import unlock_signin

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
