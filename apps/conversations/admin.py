"""Staff review of conversations.

Conversation logs are read-only for everyone but superusers. The one write reviewers may do —
flagging an answer and writing the correct one — and turning a correction into a knowledge entry
(owners and admins) are dedicated POST views here that call ``review`` services with their own
permission checks; the change forms stay read-only. Personal data is masked on every page and in
exports unless the user may reveal it (``conversations.reveal_pii`` or superuser), and revealing
is written to the audit log.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin_mixins import TenantScopedAdmin
from apps.core.audit import audit_record
from apps.core.pii import mask_text

from . import delivery, review, selectors
from .api import may_reveal_pii
from .models import Conversation, DeliveryState, Feedback, InboundMessage, Message, UndeliveredReply

REVEAL_SESSION_KEY = "parley_reveal"
#: How long a reveal lasts before the transcript masks again (seconds).
REVEAL_SECONDS = 15 * 60


PII_SEARCH_REFUSED = _(
    "Searching for personal data (phone numbers, e-mail addresses, id or card numbers) needs the "
    "“reveal PII” permission."
)


class ConversationLogAdmin(TenantScopedAdmin):
    """Conversation logs: reviewers read them; nobody but a superuser edits them."""

    reviewer_can_view = True
    read_only = True

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        # Texts are shown masked; searching them for a phone number or an id would still tell
        # who wrote it. Searching by personal data needs the same permission as revealing it.
        if search_term and not may_reveal_pii(request.user) and mask_text(search_term) != search_term:
            messages.warning(request, PII_SEARCH_REFUSED)
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


# --- list filters -------------------------------------------------------------------------------
class RatingFilter(admin.SimpleListFilter):
    title = _("rating")
    parameter_name = "rating"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return selectors.RATING_CHOICES

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return selectors.filter_by_rating(queryset, self.value())


class _AnswerFlagFilter(admin.SimpleListFilter):
    flag = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("1", _("Yes")), ("0", _("No")))

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return selectors.filter_by_answer_flag(queryset, self.flag, self.value())


class FallbackFilter(_AnswerFlagFilter):
    title = _("fallback used")
    parameter_name = "fallback"
    flag = "fallback_used"


class FailedFilter(_AnswerFlagFilter):
    title = _("failed answer")
    parameter_name = "failed"
    flag = "failed"


class DateRangeFilter(admin.ListFilter):
    """From / to dates (inclusive) in a small form on the filter sidebar."""

    title = _("date range")
    template = "admin/conversations/date_range_filter.html"
    parameter_names = ("date_from", "date_to")

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.parameter_names:
            if name in params:
                value = params.pop(name)
                self.used_parameters[name] = value[-1] if isinstance(value, list) else value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameter_names)

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return selectors.filter_by_dates(
            queryset,
            selectors.parse_day(self.used_parameters.get("date_from")),
            selectors.parse_day(self.used_parameters.get("date_to")),
        )

    def choices(self, changelist: Any) -> Any:
        keep = [(k, v) for k, v in changelist.params.items() if k not in self.parameter_names]
        yield {
            "date_from": self.used_parameters.get("date_from", ""),
            "date_to": self.used_parameters.get("date_to", ""),
            "hidden": keep,
            "active": any(self.used_parameters.get(n) for n in self.parameter_names),
            "clear_url": changelist.get_query_string(remove=list(self.parameter_names)),
        }


# --- conversations ------------------------------------------------------------------------------
@admin.register(Conversation)
class ConversationAdmin(ConversationLogAdmin):
    list_display = ("id", "tenant", "bot", "platform", "user", "language", "last_activity_at", "flagged")
    list_display_links = ("id",)
    list_filter = (
        ("tenant", admin.RelatedOnlyFieldListFilter),
        ("bot", admin.RelatedOnlyFieldListFilter),
        "channel__platform",
        DateRangeFilter,
        RatingFilter,
        "language",
        FallbackFilter,
        FailedFilter,
        "flagged",
    )
    # Message text only: searching names would let anyone probe for a person's presence.
    search_fields = ("messages__text",)
    search_help_text = _("Search the text of the messages.")
    list_select_related = ("tenant", "bot", "channel")
    change_list_template = "admin/conversations/conversation/change_list.html"

    @admin.display(description=_("platform"), ordering="channel__platform")
    def platform(self, obj: Conversation) -> str:
        return obj.channel.get_platform_display()

    @admin.display(description=_("user"))
    def user(self, obj: Conversation) -> str:
        if obj.is_group:
            return _("(group)")
        return selectors.masked_name(obj.user_name, reveal=False) or mask_text(obj.user_id)

    def get_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("export/<str:fmt>/", view(self.export_view), name="conversations_conversation_export"),
            path(
                "export/<str:fmt>/unmasked/",
                view(self.export_view),
                {"unmasked": True},
                name="conversations_conversation_export_unmasked",
            ),
            path("<int:object_id>/reveal/", view(self.reveal_view), name="conversations_conversation_reveal"),
            path(
                "<int:object_id>/messages/<int:message_id>/review/",
                view(self.review_view),
                name="conversations_conversation_review",
            ),
            path(
                "<int:object_id>/messages/<int:message_id>/knowledge/",
                view(self.knowledge_view),
                name="conversations_conversation_knowledge",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra = {"can_reveal": review.can_reveal_pii(request.user), **(extra_context or {})}
        return super().changelist_view(request, extra)

    # --- transcript ---------------------------------------------------------------------------
    def _revealed(self, request: HttpRequest, conv: Conversation) -> bool:
        until = request.session.get(REVEAL_SESSION_KEY, {}).get(str(conv.pk), 0)
        return until > time.time() and review.can_reveal_pii(request.user, conv.tenant_id)

    def _get_readable(self, request: HttpRequest, object_id: Any) -> Conversation:
        conv = self.get_object(request, str(object_id))
        if conv is None or not self.has_view_permission(request, conv):
            raise PermissionDenied
        return conv

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """GET shows the transcript (for superusers too: the log is not edited by hand); other
        methods go to Django's change view, which refuses writes to read-only users."""
        if request.method != "GET":
            return super().change_view(request, object_id, form_url, extra_context)
        conv = self.get_object(request, object_id)
        if conv is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, conv):
            raise PermissionDenied
        reveal = self._revealed(request, conv)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Conversation #%(number)s") % {"number": conv.pk},
            "subtitle": None,
            "original": conv,
            "conversation": conv,
            "user_display": selectors.masked_name(conv.user_name, reveal=reveal),
            "user_id_display": selectors.masked(conv.user_id, reveal=reveal),
            "turns": selectors.transcript(conv, reveal=reveal),
            "revealed": reveal,
            "can_reveal": review.can_reveal_pii(request.user, conv.tenant_id),
            "can_review": review.can_review(request.user, conv.tenant_id),
            "can_manage": review.can_manage(request.user, conv.tenant_id),
            "has_change_permission": self.has_change_permission(request, conv),
            "has_view_permission": True,
            "has_delete_permission": self.has_delete_permission(request, conv),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/conversations/conversation/transcript.html", context)

    # --- writes reviewers may do ---------------------------------------------------------------
    def _message_of(self, request: HttpRequest, object_id: int, message_id: int) -> Message:
        conv = self._get_readable(request, object_id)
        return get_object_or_404(
            Message.objects.select_related("conversation__tenant"), pk=message_id, conversation=conv
        )

    def _back(self, conv_id: int, message_id: int | None = None) -> HttpResponse:
        url = reverse("admin:conversations_conversation_change", args=[conv_id])
        return redirect(f"{url}#m{message_id}" if message_id else url)

    @staticmethod
    def _wants_hide(request: HttpRequest) -> bool:
        return request.POST.get("hide") == "1"

    def reveal_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """POST: show this conversation unmasked for ``REVEAL_SECONDS`` (audited); ``hide=1`` masks again."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        conv = self._get_readable(request, object_id)
        revealed = dict(request.session.get(REVEAL_SESSION_KEY, {}))
        if self._wants_hide(request):
            revealed.pop(str(conv.pk), None)
        else:
            try:
                review.record_reveal(user=request.user, conversation=conv, request=request)
            except PermissionError as exc:
                raise PermissionDenied(str(exc))
            now = time.time()
            revealed = {k: v for k, v in revealed.items() if v > now}
            revealed[str(conv.pk)] = now + REVEAL_SECONDS
        request.session[REVEAL_SESSION_KEY] = revealed
        return self._back(conv.pk)

    def review_view(self, request: HttpRequest, object_id: int, message_id: int) -> HttpResponse:
        """POST ``flagged`` (checkbox) and ``correction``: the reviewer's verdict on one answer."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        message = self._message_of(request, object_id, message_id)
        try:
            review.message_review(
                message=message,
                user=request.user,
                flagged=request.POST.get("flagged") in ("on", "1", "true"),
                correction=request.POST.get("correction", ""),
                request=request,
            )
        except PermissionError as exc:
            raise PermissionDenied(str(exc))
        except review.ReviewError as exc:
            return HttpResponseBadRequest(str(exc))
        self.message_user(request, _("Review of answer #%(number)s saved.") % {"number": message.pk}, messages.SUCCESS)
        return self._back(message.conversation_id, message.pk)

    def knowledge_view(self, request: HttpRequest, object_id: int, message_id: int) -> HttpResponse:
        """POST: turn the answer's correction into a knowledge entry of its bot (owners and admins)."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        message = self._message_of(request, object_id, message_id)
        try:
            entry = review.knowledge_from_correction(message=message, user=request.user, request=request)
        except PermissionError as exc:
            raise PermissionDenied(str(exc))
        except review.ReviewError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(message.conversation_id, message.pk)
        self.message_user(
            request,
            format_html(
                _("Knowledge entry #{} added to {}: the bot now answers this question with the correction."),
                entry.pk,
                message.conversation.bot,
            ),
            messages.SUCCESS,
        )
        return self._back(message.conversation_id, message.pk)

    # --- export ------------------------------------------------------------------------------
    def export_view(self, request: HttpRequest, fmt: str, unmasked: bool = False) -> HttpResponse:
        """The conversations the changelist shows with the same filters and search, as CSV (one
        row per message) or JSON Lines (one conversation per line). Masked unless ``unmasked`` and
        the user may reveal PII; every export is audited."""
        if fmt not in ("csv", "jsonl"):
            return HttpResponseBadRequest(_("The export format must be csv or jsonl."))
        if not self.has_view_permission(request):
            raise PermissionDenied
        if unmasked and not review.can_reveal_pii(request.user):
            raise PermissionDenied(_("exporting unmasked data needs the conversations.reveal_pii permission"))
        try:
            cl = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("Unknown filter."))
        qs = cl.get_queryset(request)
        # Reveal per tenant: a revealer sees unmasked text only for tenants they can read, which
        # the changelist queryset already guarantees.
        audit_record(
            action="conversation.export",
            actor=request.user,
            request=request,
            format=fmt,
            unmasked=unmasked,
            filters=mask_text(request.GET.urlencode())[:500],
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        if fmt == "csv":
            body = _with_bom(selectors.export_csv(qs, reveal=unmasked))
            response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
        else:
            response = StreamingHttpResponse(
                selectors.export_jsonl(qs, reveal=unmasked), content_type="application/x-ndjson; charset=utf-8"
            )
        # The file says what it holds: a masked and an unmasked export never share a name.
        kind = "unmasked" if unmasked else "masked"
        response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}-{kind}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response


def _with_bom(chunks: Any) -> Any:
    # Spreadsheet programs need the byte-order mark to read UTF-8 (Chinese text) correctly.
    yield "\ufeff"
    yield from chunks


# --- messages, feedback, inbound: masked lists; opening one leads to its transcript ----------------
class _OpensTranscript:
    conversation_path = "conversation_id"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None):
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is None or not self.has_view_permission(request, obj):  # type: ignore[attr-defined]
            return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        if request.method == "GET":
            conv_id, message_id = self._target(obj)
            url = reverse("admin:conversations_conversation_change", args=[conv_id])
            return redirect(f"{url}#m{message_id}")
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def _target(self, obj: Any) -> tuple[int, int]:
        raise NotImplementedError


@admin.register(Message)
class MessageAdmin(_OpensTranscript, ConversationLogAdmin):
    tenant_path = "conversation__tenant"
    list_display = (
        "id",
        "conversation",
        "role",
        "short_text",
        "model_name",
        "latency_ms",
        "fallback_used",
        "created_at",
    )
    list_filter = (
        "role",
        "source",
        "fallback_used",
        "failed",
        "flagged",
        ("conversation__tenant", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("text",)
    list_select_related = ("conversation",)

    @admin.display(description=_("text"))
    def short_text(self, obj: Message) -> str:
        return mask_text(obj.text[:200])[:80]

    def _target(self, obj: Message) -> tuple[int, int]:
        return obj.conversation_id, obj.pk


@admin.register(Feedback)
class FeedbackAdmin(_OpensTranscript, ConversationLogAdmin):
    tenant_path = "message__conversation__tenant"
    list_display = ("message", "rating", "short_comment", "source", "updated_at")
    list_filter = ("rating", "source", ("message__conversation__tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("comment",)
    list_select_related = ("message",)

    @admin.display(description=_("comment"))
    def short_comment(self, obj: Feedback) -> str:
        return mask_text(obj.comment[:200])[:80]

    def _target(self, obj: Feedback) -> tuple[int, int]:
        return obj.message.conversation_id, obj.message_id


@admin.register(InboundMessage)
class InboundMessageAdmin(ConversationLogAdmin):
    tenant_path = "channel__bot__tenant"
    reviewer_can_view = False
    list_display = ("id", "channel", "platform_message_id", "status", "attempts", "received_at", "finished_at")
    list_filter = ("status", "channel__platform", ("channel__bot__tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("platform_message_id", "chat_id")
    # The payload and the text carry personal data: shown masked, never as editable fields.
    exclude = ("raw", "text", "user_name", "reply_context")
    readonly_fields = ("masked_text", "masked_user_name")

    @admin.display(description=_("text"))
    def masked_text(self, obj: InboundMessage) -> str:
        return mask_text(obj.text)

    @admin.display(description=_("user name"))
    def masked_user_name(self, obj: InboundMessage) -> str:
        return selectors.masked_name(obj.user_name, reveal=False)


@admin.register(UndeliveredReply)
class UndeliveredReplyAdmin(_OpensTranscript, TenantScopedAdmin):
    """Replies their platform has not taken, and why (the platform's own error). Reviewers see the
    list; owners and admins may send them again now ("retry now"). Opening one leads to its place
    in the transcript. No texts here: the transcript shows them, masked."""

    tenant_path = "conversation__tenant"
    reviewer_can_view = True
    list_display = ("created_at", "tenant", "bot", "platform", "state", "delivery_attempts", "next_attempt", "reason")
    list_display_links = ("created_at",)
    list_filter = ("delivery_state", "conversation__channel__platform")
    list_select_related = ("conversation__tenant", "conversation__bot", "conversation__channel")
    ordering = ("-created_at",)
    actions = ["retry_now"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return delivery.undelivered(super().get_queryset(request)).filter(delivered_at__isnull=True)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("tenant"))
    def tenant(self, obj: UndeliveredReply) -> str:
        return obj.conversation.tenant.name

    @admin.display(description=_("bot"))
    def bot(self, obj: UndeliveredReply) -> str:
        return obj.conversation.bot.name

    @admin.display(description=_("platform"))
    def platform(self, obj: UndeliveredReply) -> str:
        return obj.conversation.channel.platform

    @admin.display(description=_("state"), ordering="delivery_state")
    def state(self, obj: UndeliveredReply) -> str:
        return obj.get_delivery_state_display()

    @admin.display(description=_("next attempt"), ordering="next_delivery_at")
    def next_attempt(self, obj: UndeliveredReply) -> Any:
        return obj.next_delivery_at if obj.delivery_state == DeliveryState.PENDING else "—"

    @admin.display(description=_("why"))
    def reason(self, obj: UndeliveredReply) -> str:
        return obj.delivery_error[:200]

    @admin.action(description=_("Retry now"), permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        sent = delivery.retry_now(queryset)
        self.message_user(
            request,
            ngettext("%(count)d reply is being sent again.", "%(count)d replies are being sent again.", sent)
            % {"count": sent},
            messages.SUCCESS if sent else messages.WARNING,
        )

    def _target(self, obj: UndeliveredReply) -> tuple[int, int]:
        return obj.conversation_id, obj.pk
