"""A Content-Security-Policy on every page Parley serves (docs/security.md "Content-Security-Policy").

Scripts only from Parley itself, no plugins, no framing, no ``<base>`` rewriting: an injected
``<script>`` or ``javascript:`` link does not run even where escaping was missed. Inline styles are
allowed (templates and the admin theme set ``style`` attributes; a style cannot run code).

The admin is the one exception: its theme (django-unfold) is built on Alpine.js, which evaluates
the expressions in its ``x-data``/``x-on`` attributes with ``new Function`` — which CSP counts as
``eval``. So ``/admin/`` pages, and only they, allow ``'unsafe-eval'``; they still run no inline or
third-party script. A response that sets its own policy keeps it: the web-chat page
(``/chat/<key>/``) names the sites that may frame it, and the widget runs on the host's pages under
the host's policy.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

_COMMON = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
POLICY = f"{_COMMON}; script-src 'self'"
ADMIN_POLICY = f"{_COMMON}; script-src 'self' 'unsafe-eval'"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = ADMIN_POLICY if request.path.startswith("/admin/") else POLICY
        return response
