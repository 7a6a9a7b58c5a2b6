from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin_mixins import TenantScopedAdmin

from .models import Membership, Tenant
from .selectors import invitable_user, manageable_users


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


class MembershipForm(forms.ModelForm):
    """A tenant owner's or admin's membership form: the person is someone already in one of their
    tenants (a list of those, never of the whole install) or an account named by its e-mail
    address — never a superuser, never a username guessed from elsewhere."""

    email = forms.EmailField(
        label=_("or their e-mail address"),
        required=False,
        help_text=_("The e-mail address of a Parley account (your operator creates accounts, or single sign-on does)."),
    )

    class Meta:
        model = Membership
        fields = ("user", "email", "tenant", "role")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].required = False
        self.fields["user"].label = _("Person")

    def clean(self):
        cleaned = super().clean()
        user, email = cleaned.get("user"), cleaned.get("email")
        if user is None and not email:
            raise forms.ValidationError(_("Choose a person, or give the e-mail address of their account."))
        if user is None:
            user = invitable_user(email)
            if user is None:
                self.add_error(
                    "email",
                    _("No account can be added with this address. Ask your Parley operator to create it."),
                )
                return cleaned
            cleaned["user"] = self.instance.user = user
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    autocomplete_fields = ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if request.user.is_superuser or obj is not None:
            # Superusers choose from every account; a saved membership stays with its person.
            return super().get_form(request, obj, change=change, **kwargs)
        return super().get_form(request, obj, change=change, **{**kwargs, "form": MembershipForm})

    def get_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ("user", "tenant", "role")
        return ("user", "tenant", "role") if obj is not None else ("user", "email", "tenant", "role")

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if obj is not None and not request.user.is_superuser else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = manageable_users(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
