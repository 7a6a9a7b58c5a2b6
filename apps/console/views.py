from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from .getting_started import KEY_PLACEHOLDER, checklist_for


def getting_started(request: HttpRequest) -> HttpResponse:
    """The first-hour checklist (``getting_started.checklist_for``) inside the admin's frame."""
    context = {
        **admin.site.each_context(request),
        "title": _("Getting started"),
        "checklist": checklist_for(user=request.user),
        "placeholder": KEY_PLACEHOLDER,
    }
    return TemplateResponse(request, "console/getting_started.html", context)


def admin_page(view):  # the admin site is Unfold's, set in its app's ready(): look it up per call
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return admin.site.admin_view(view)(request, *args, **kwargs)

    return wrapped
