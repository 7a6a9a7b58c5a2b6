from django import forms
from django.contrib import admin

from apps.core.admin_mixins import SecretFieldsFormMixin, TenantScopedAdmin

from .models import ModelConfig


class ModelConfigForm(SecretFieldsFormMixin, forms.ModelForm):
    secret_fields = ("api_key",)

    class Meta:
        model = ModelConfig
        fields = "__all__"  # noqa: DJ007 - the admin fieldsets decide the layout


@admin.register(ModelConfig)
class ModelConfigAdmin(TenantScopedAdmin):
    form = ModelConfigForm
    list_display = ("name", "tenant", "provider", "model", "tier", "timeout_s", "enabled", "updated_at")
    list_filter = ("provider", "tier", "enabled", "tenant")
    search_fields = ("name", "model", "endpoint")
    fieldsets = (
        (None, {"fields": ("tenant", "name", "enabled", "tier")}),
        ("Provider", {"fields": ("provider", "endpoint", "api_key", "model")}),
        ("Generation", {"fields": ("max_tokens", "temperature", "timeout_s")}),
        ("Cost", {"fields": ("cost_input_per_1k", "cost_output_per_1k")}),
    )
