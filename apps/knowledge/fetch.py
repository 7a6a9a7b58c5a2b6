"""Fetching a URL source, through the outbound guard (apps/core/netguard.py).

Every connection (redirects included) goes to an address the guard allows, checked when it is
opened, so a page cannot point Parley at the cloud metadata service or, unless the operator allows
them, at internal addresses. The body is read up to ``KNOWLEDGE_MAX_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from apps.core import netguard

USER_AGENT = "Parley-Knowledge/1"
MAX_REDIRECTS = 5


class FetchError(Exception):
    """The page could not be fetched; the message says why (never the URL's query, which may hold a token)."""


def fetch(url: str) -> tuple[bytes, str]:
    """``(body, content type)`` of ``url`` (http or https)."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise FetchError(_("Only http and https addresses can be fetched."))
    reason = netguard.check_url(url)
    if reason:
        raise FetchError(_("The address may not be fetched: %(reason)s.") % {"reason": reason})
    limit = settings.KNOWLEDGE_MAX_DOCUMENT_BYTES
    try:
        with (
            netguard.guarded_client(
                limits=httpx.Limits(max_connections=4),
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                timeout=settings.KNOWLEDGE_HTTP_TIMEOUT,
                headers={"User-Agent": USER_AGENT},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise FetchError(_("The page answered HTTP %(status)s.") % {"status": response.status_code})
            body = bytearray()
            for piece in response.iter_bytes():
                body += piece
                if len(body) > limit:
                    raise FetchError(_("The page is larger than %(limit)s bytes.") % {"limit": limit})
            return bytes(body), response.headers.get("content-type", "")
    except netguard.OutboundRefused as exc:
        raise FetchError(_("The address may not be fetched: %(reason)s.") % {"reason": exc}) from exc
    except httpx.TooManyRedirects as exc:
        raise FetchError(_("The page redirected more than %(n)s times.") % {"n": MAX_REDIRECTS}) from exc
    except httpx.HTTPError as exc:
        raise FetchError(_("The page could not be fetched (%(error)s).") % {"error": type(exc).__name__}) from exc
