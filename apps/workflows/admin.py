from django import forms
from django.contrib import admin

from apps.core.admin_mixins import SecretFieldsFormMixin, TenantScopedAdmin

from .models import Workflow, WorkflowRun


class WorkflowForm(SecretFieldsFormMixin, forms.ModelForm):
    secret_fields = ("signing_secret",)

    class Meta:
        model = Workflow
        fields = (
            "tenant",
            "bot",
            "name",
            "trigger",
            "trigger_value",
            "url",
            "payload_template",
            "reply_template",
            "signing_secret",
            "confirmation_required",
            "max_retries",
            "timeout_s",
            "enabled",
        )


@admin.register(Workflow)
class WorkflowAdmin(TenantScopedAdmin):
    form = WorkflowForm
    list_display = ("name", "tenant", "bot", "trigger", "trigger_value", "confirmation_required", "enabled")
    list_filter = ("trigger", "enabled", "confirmation_required", "tenant")
    search_fields = ("name", "trigger_value", "url")


@admin.register(WorkflowRun)
class WorkflowRunAdmin(TenantScopedAdmin):
    tenant_path = "workflow__tenant"
    reviewer_can_view = True
    read_only = True
    list_display = ("workflow", "status", "response_status", "attempts", "created_at", "finished_at")
    list_filter = ("status", "workflow__tenant")
    search_fields = ("workflow__name", "error")
