from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from .signin import unlock_signin

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin, ModelAdmin):
    """Django's user admin in the console's theme, plus ending a password sign-in lockout (``signin.py``)."""

    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    actions = ["unlock_signin"]

    @admin.action(description=_("Clear failed sign-ins and end a lockout"))
    def unlock_signin(self, request, queryset):
        names = list(queryset.values_list("username", flat=True))
        for username in names:
            unlock_signin(username=username, actor=request.user)
        self.message_user(
            request,
            _("Sign-in unlocked for %(count)d user(s): %(names)s.")
            % {"count": len(names), "names": ", ".join(names[:20]) + (" …" if len(names) > 20 else "")},
            messages.SUCCESS,
        )


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class PermissionGroupAdmin(GroupAdmin, ModelAdmin):
    """Django's permission groups in the console's theme (superusers only, see apps/console/navigation.py)."""
