"""Markdown → Telegram HTML (``parse_mode=HTML``).

HTML rather than MarkdownV2: it needs only ``& < >`` escaped (MarkdownV2 needs eighteen characters
escaped, differently inside code and link targets), and a mistake there makes Telegram refuse the
whole message. Only the tags Telegram accepts are written.
"""

from __future__ import annotations

import html
import re

from apps.channels.markdown import TreeRenderer

SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:")
LANGUAGE_RE = re.compile(r"^[A-Za-z0-9_+#.-]{1,32}$")


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


class TelegramHTML(TreeRenderer):
    def escape(self, text: str) -> str:
        return escape(text)

    def strong(self, inner: str) -> str:
        return f"<b>{inner}</b>"

    def em(self, inner: str) -> str:
        return f"<i>{inner}</i>"

    def strike(self, inner: str) -> str:
        return f"<s>{inner}</s>"

    def code(self, content: str) -> str:
        return f"<code>{escape(content)}</code>"

    def link(self, href: str, inner: str) -> str:
        if not href.lower().startswith(SAFE_SCHEMES):
            return inner
        return f'<a href="{html.escape(href, quote=True)}">{inner or escape(href)}</a>'

    def heading(self, inner: str, level: int) -> str:
        return f"<b>{inner}</b>"

    def code_block(self, content: str, language: str) -> str:
        if language and LANGUAGE_RE.match(language):
            return f'<pre><code class="language-{language}">{escape(content)}</code></pre>'
        return f"<pre>{escape(content)}</pre>"

    def quote(self, inner: str) -> str:
        return f"<blockquote>{inner}</blockquote>"

    def rule(self) -> str:
        return "———"


def strip_tags(html_text: str) -> str:
    """The visible text of our own HTML (for the plain-text fallback)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))
