from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from apps.core.admin_mixins import TenantScopedAdmin
from apps.core.audit import audit_record

from .connectors import status as connection_status
from .forms import ChannelForm, SendTestForm
from .models import Channel
from .services import channel_send_test


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    form = ChannelForm
    tenant_path = "bot__tenant"
    list_display = ("key", "platform", "bot", "mode", "enabled", "streaming", "connection")
    list_filter = ("platform", "mode", "enabled", "bot__tenant")
    search_fields = ("key", "name", "bot__name")
    readonly_fields = ("webhook_url_display", "connection_status", "send_test_link")
    fieldsets = (
        (None, {"fields": ("bot", "platform", "key", "name", "mode", "enabled", "streaming")}),
        (_("Platform"), {"fields": ("credentials", "api_base", "allowed_origins")}),
        (_("Connect"), {"fields": ("webhook_url_display", "connection_status", "send_test_link")}),
    )

    @admin.display(description=_("Webhook / chat URL"))
    def webhook_link(self, obj: Channel) -> str:
        return obj.webhook_url

    @admin.display(description=_("URL to paste into the platform console"))
    def webhook_url_display(self, obj: Channel) -> str:
        if not obj.pk:
            return _("Shown after the channel is saved.")
        if obj.mode == Channel.Mode.LONG_CONNECTION:
            return _("None needed: Parley connects out to the platform (see Long connection below).")
        return format_html("<code>{}</code>", obj.webhook_url)

    @admin.display(description=_("Long connection"))
    def connection(self, obj: Channel) -> str:
        return connection_status.describe(obj)

    @admin.display(description=_("Long connection"))
    def connection_status(self, obj: Channel) -> str:
        if not obj.pk:
            return _("Shown after the channel is saved.")
        if obj.mode != Channel.Mode.LONG_CONNECTION:
            return _("Not used: the platform calls the webhook URL.")
        return connection_status.describe(obj)

    @admin.display(description=_("Test"))
    def send_test_link(self, obj: Channel) -> str:
        if not obj.pk or obj.platform == Channel.Platform.WEB:
            return "—"
        url = reverse("admin:im_channels_channel_send_test", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Send a test message"))

    actions_detail = ["send_test_message"]

    def get_actions_detail(self, request, object_id):
        # Unfold checks action permissions with the object's id, not the object: check the tenant here.
        channel = self.get_object(request, str(object_id))
        if channel is None or channel.platform == Channel.Platform.WEB:
            return []
        if not self.has_change_permission(request, channel):
            return []
        return super().get_actions_detail(request, object_id)

    @action(description=_("Send a test message"), url_path="test-message", icon="send")
    def send_test_message(self, request, object_id):
        """The change page's "Test" button: the send-test form below (same service as before)."""
        return redirect("admin:im_channels_channel_send_test", int(object_id))

    def get_urls(self):
        custom = [
            path(
                "<int:pk>/send-test/",
                self.admin_site.admin_view(self.send_test_view),
                name="im_channels_channel_send_test",
            )
        ]
        return custom + super().get_urls()

    def send_test_view(self, request, pk: int):
        channel = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, channel):
            return redirect("admin:index")
        form = SendTestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            ok, said = channel_send_test(channel=channel, **form.cleaned_data)
            audit_record(
                action="channel.send_test",
                actor=request.user,
                tenant=channel.bot.tenant,
                target=channel.key,
                request=request,
                ok=ok,
            )
            self.message_user(request, said, messages.SUCCESS if ok else messages.ERROR)
            return redirect("admin:im_channels_channel_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send a test message — %(channel)s") % {"channel": channel},
            "form": form,
            "channel": channel,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/im_channels/send_test.html", context)
