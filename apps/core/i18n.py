"""Texts in a given person's language, outside a request: chat command replies and system texts
go to an IM user in the language of their conversation, whatever the server's (docs/i18n.md).

    text_in("zh", _("Stopped."))  ->  "已停止。"

The texts themselves are ordinary ``gettext_lazy`` strings in the project's catalogue.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.functional import lazy
from django.utils.html import escape


def django_language(code: str | None) -> str:
    """A conversation's language code ("zh", "zh-CN", "en", "ja", …) as one of Parley's
    ``LANGUAGES`` ("zh-hans" for any Chinese, else "en")."""
    return "zh-hans" if (code or "").lower().startswith("zh") else "en"


def text_in(language: str | None, message, **params) -> str:
    """``message`` (a lazy gettext string) translated into ``language``; ``params`` are filled in
    with ``str.format`` after translating."""
    with translation.override(django_language(language)):
        text = str(message)
    return text.format(**params) if params else text


def _escaped(text) -> str:
    return escape(str(text))


#: A help text shown in the admin, which renders help texts as HTML: ``<platform>`` in the text
#: must reach the page as ``&lt;platform&gt;`` to stay visible. Lazy, so the text is translated
#: when shown, not at import.
escaped_help = lazy(_escaped, str)
