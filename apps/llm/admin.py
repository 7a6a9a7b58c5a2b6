from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from apps.core.admin_mixins import SecretFieldsFormMixin, TenantScopedAdmin
from apps.core.audit import audit_record
from apps.tenants.selectors import MANAGE_ROLES, tenant_ids_for

from . import breaker
from .models import ModelConfig
from .services import model_test
from .usage import usage_by_day, usage_totals


class ModelConfigForm(SecretFieldsFormMixin, forms.ModelForm):
    secret_fields = ("api_key",)

    class Meta:
        model = ModelConfig
        fields = "__all__"  # noqa: DJ007 - the admin fieldsets decide the layout


@admin.register(ModelConfig)
class ModelConfigAdmin(TenantScopedAdmin):
    form = ModelConfigForm
    # Fits 1366 px with the tenant column (docs/console.md): the provider by its short name, the tier
    # in the filter and on the model's page.
    list_display = ("name", "tenant", "provider_short", "model", "enabled", "breaker_state")
    actions = ["test_models"]
    actions_detail = ["test_this_model"]
    change_list_template = "admin/llm/modelconfig/change_list.html"
    list_filter = ("provider", "tier", "enabled", "tenant")
    search_fields = ("name", "model", "endpoint")
    fieldsets = (
        (None, {"fields": ("tenant", "name", "enabled", "tier")}),
        (_("Provider"), {"fields": ("provider", "endpoint", "api_key", "model", "api_version")}),
        (_("Generation"), {"fields": ("max_tokens", "temperature", "timeout_s", "supports_tools")}),
        (_("Cost"), {"fields": ("cost_input_per_1k", "cost_output_per_1k")}),
    )

    @admin.display(description=_("provider"), ordering="provider")
    def provider_short(self, obj: ModelConfig) -> str:
        """ "OpenAI-compatible", not the list of services in brackets the choice carries."""
        return str(obj.get_provider_display()).split(" (", 1)[0].split("（", 1)[0]

    @admin.display(description=_("Circuit breaker"))
    def breaker_state(self, obj: ModelConfig) -> str:
        state = breaker.state_of(obj)
        if state.state == breaker.OPEN:
            return _("open — skipped, next try in %(seconds)s s") % {"seconds": f"{state.retry_in_s:g}"}
        if state.state == breaker.HALF_OPEN:
            return _("half-open — next call probes")
        if state.failures:
            return _("closed (%(failures)d recent failures)") % {"failures": state.failures}
        return _("closed")

    @admin.action(description=_("Test this model (makes a real call)"), permissions=["change"])
    def test_models(self, request, queryset):
        for cfg in queryset[:5]:  # real calls, one after another: keep the request short
            self._test_one(request, cfg)

    def _test_one(self, request, cfg: ModelConfig) -> None:
        result = model_test(cfg)
        audit_record(
            action="model.test",
            actor=request.user,
            tenant=cfg.tenant,
            target=cfg.name,
            ok=result.ok,
            latency_ms=result.latency_ms,
            request=request,
        )
        self.message_user(request, f"{cfg.name}: {result.message}", messages.SUCCESS if result.ok else messages.ERROR)

    def get_actions_detail(self, request, object_id):
        # Unfold checks action permissions with the object's id, not the object: check the tenant here.
        cfg = self.get_object(request, str(object_id))
        if cfg is None or not self.has_change_permission(request, cfg):
            return []
        return super().get_actions_detail(request, object_id)

    @action(description=_("Test this model"), url_path="test", icon="network_check")
    def test_this_model(self, request, object_id):
        """The change page's "Test" button: the same real call as the bulk action, for this model."""
        cfg = self.get_object(request, str(object_id))
        if cfg is None or not self.has_change_permission(request, cfg):
            raise PermissionDenied
        self._test_one(request, cfg)
        return redirect("admin:llm_modelconfig_change", cfg.pk)

    def get_urls(self):
        usage = path("usage/", self.admin_site.admin_view(self.usage_view), name="llm_modelconfig_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request):
        """Tokens and cost per tenant / bot / model / day for the tenants this user manages."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = tenant_ids_for(request.user, roles=MANAGE_ROLES)
        rows = usage_by_day(tenant_ids=ids)[:500]
        context = {
            **self.admin_site.each_context(request),
            "title": _("AI usage and cost"),
            "opts": self.model._meta,
            "rows": rows,
            "totals": usage_totals(rows),
        }
        return TemplateResponse(request, "admin/llm/usage.html", context)
