"""A signed-in staff user's stored language wins over the browser's (docs/i18n.md).

Runs after ``LocaleMiddleware`` (browser language or cookie) and ``AuthenticationMiddleware``. The
choice is read from the database once per session and kept in the session; ``set_language``
(apps/accounts/views.py) updates both.
"""

from __future__ import annotations

from django.utils import translation

SESSION_KEY = "parley_language"


def stored_language(request) -> str:
    """The signed-in user's chosen language code, or "" (none chosen, or nobody signed in)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    if SESSION_KEY not in request.session:
        from .models import StaffPreference

        row = StaffPreference.objects.filter(user=user).values_list("language", flat=True).first()
        request.session[SESSION_KEY] = row or ""
    return request.session[SESSION_KEY]


class StaffLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = stored_language(request)
        if language and translation.check_for_language(language):
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
