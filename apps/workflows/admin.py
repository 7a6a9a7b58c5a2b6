import json

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.core.admin_mixins import SecretFieldsFormMixin, TenantScopedAdmin, TenantScopedInline
from apps.core.audit import audit_record
from apps.core.pii import mask_text
from apps.tenants.selectors import can_reveal_pii

from .models import BotToolServer, ToolServer, Workflow, WorkflowRun
from .services import workflow_test_call

#: Workflows one "Send a test call" calls at most (each call may take up to its timeout).
TEST_CALL_LIMIT = 5


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
            "description",
            "parameters",
            "url",
            "payload_template",
            "reply_template",
            "signing_secret",
            "confirmation_required",
            "max_retries",
            "timeout_s",
            "enabled",
        )
        widgets = {
            "payload_template": forms.Textarea(attrs={"rows": 6, "style": "font-family: monospace"}),
            "reply_template": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def clean_parameters(self):
        return self.cleaned_data.get("parameters") or {}  # left empty: no arguments


@admin.register(Workflow)
class WorkflowAdmin(TenantScopedAdmin):
    form = WorkflowForm
    list_display = ("name", "tenant", "bot", "trigger", "trigger_value", "confirmation_required", "enabled")
    list_filter = ("trigger", "enabled", "confirmation_required", "tenant")
    search_fields = ("name", "trigger_value", "url")
    actions = ["send_test_call"]

    @admin.action(description=_("Send a test call (a real call with sample values)"), permissions=["change"])
    def send_test_call(self, request, queryset):
        # Real calls, one after another while the page waits: a few at a time keeps the request short.
        selected = list(queryset.select_related("tenant")[: TEST_CALL_LIMIT + 1])
        if len(selected) > TEST_CALL_LIMIT:
            total = queryset.count()
            skipped = [
                str(name) for name in queryset.values_list("name", flat=True)[TEST_CALL_LIMIT : TEST_CALL_LIMIT + 10]
            ]
            more = total - TEST_CALL_LIMIT - len(skipped)
            self.message_user(
                request,
                _(
                    "Only the first %(limit)d of the %(total)d selected workflows were called (a test call "
                    "waits for each answer). Not called: %(names)s — select them and send their test calls again."
                )
                % {
                    "limit": TEST_CALL_LIMIT,
                    "total": total,
                    "names": ", ".join(skipped) + (_(" and %(more)d more") % {"more": more} if more else ""),
                },
                messages.WARNING,
            )
        for wf in selected[:TEST_CALL_LIMIT]:
            ok, said = workflow_test_call(wf)
            audit_record(
                action="workflow.test_call",
                actor=request.user,
                tenant=wf.tenant,
                target=wf.name,
                ok=ok,
                request=request,
            )
            self.message_user(request, said, messages.SUCCESS if ok else messages.ERROR)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(TenantScopedAdmin):
    """Read-only. What the user wrote is PII-masked unless the viewer may reveal personal data (as in
    conversation review); the signing secret is never part of a run."""

    tenant_path = "workflow__tenant"
    reviewer_can_view = True
    read_only = True
    list_display = ("workflow", "state", "response_status", "attempts", "created_at", "finished_at")
    list_filter = ("status", "workflow__tenant")
    search_fields = ("workflow__name", "error")
    list_select_related = ("workflow",)
    fields = (
        "workflow",
        "state",
        "conversation",
        "call_key",
        "language",
        "request_display",
        "response_status",
        "response_display",
        "attempts",
        "error",
        "reply_display",
        "created_at",
        "expires_at",
        "claimed_at",
        "queued_at",
        "requeues",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description=_("Status"), ordering="status")
    def state(self, obj: WorkflowRun) -> str:
        if (
            obj.status == WorkflowRun.Status.PENDING_CONFIRMATION
            and obj.expires_at
            and obj.expires_at <= timezone.now()
        ):
            return _("Confirmation expired (never run)")
        return obj.get_status_display()

    @admin.display(description=_("Request body"))
    def request_display(self, obj: WorkflowRun) -> str:
        text = json.dumps(obj.request_body or obj.context, ensure_ascii=False, indent=2)
        return format_html("<pre>{}</pre>", self._shown(obj, text))

    @admin.display(description=_("Response body"))
    def response_display(self, obj: WorkflowRun) -> str:
        return format_html("<pre>{}</pre>", self._shown(obj, obj.response_body or ""))

    @admin.display(description=_("Told the user"))
    def reply_display(self, obj: WorkflowRun) -> str:
        return self._shown(obj, obj.reply.text) if obj.reply_id and obj.reply else "—"

    @staticmethod
    def _shown(obj: WorkflowRun, text: str) -> str:
        return text if getattr(obj, "_reveal_pii", False) else mask_text(text)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._reveal_pii = can_reveal_pii(request.user, obj.workflow.tenant_id)
        return obj


class ToolServerForm(SecretFieldsFormMixin, forms.ModelForm):
    secret_fields = ("headers",)

    class Meta:
        model = ToolServer
        fields = ("tenant", "name", "url", "headers", "timeout_s", "enabled")


class BotToolServerForm(forms.ModelForm):
    class Meta:
        model = BotToolServer
        fields = ("bot", "tools")

    def clean_tools(self):
        return self.cleaned_data.get("tools") or []  # left empty: every tool the server lists


class BotToolServerInline(TenantScopedInline):
    model = BotToolServer
    form = BotToolServerForm
    fields = ("bot", "tools")
    verbose_name = _("bot")
    verbose_name_plural = _("bots that may use its tools (tools: a list of names; empty: all of them)")


@admin.register(ToolServer)
class ToolServerAdmin(TenantScopedAdmin):
    """Model Context Protocol servers (docs/tools.md): the headers are never shown again."""

    form = ToolServerForm
    inlines = (BotToolServerInline,)
    list_display = ("name", "tenant", "url", "timeout_s", "enabled")
    list_filter = ("enabled", "tenant")
    search_fields = ("name", "url")
    actions = ["list_tools"]

    @admin.action(description=_("List its tools (a real call to the server)"), permissions=["change"])
    def list_tools(self, request, queryset):
        from .mcp import _server, _why, fetch_tools

        for row in list(queryset[:TEST_CALL_LIMIT]):
            try:
                tools = fetch_tools(_server(row))
            except Exception as exc:
                self.message_user(request, f"{row.name}: {_why(exc)}", messages.ERROR)
                continue
            names = ", ".join(t["name"] for t in tools) or _("no tools")
            self.message_user(request, f"{row.name}: {names}", messages.SUCCESS)
