"""Markdown → Slack mrkdwn (``*bold*``, ``_italic_``, ``~strike~``, ``<url|label>``, ``>`` quotes).

Slack reads ``&``, ``<`` and ``>`` as markup (``<@U…>``, ``<!here>``, links), so every text run,
code included, has them escaped; a model's answer can then never ping ``<!channel>``.
"""

from __future__ import annotations

from apps.channels.markdown import TreeRenderer

SAFE_SCHEMES = ("http://", "https://", "mailto:")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Mrkdwn(TreeRenderer):
    def escape(self, text: str) -> str:
        return escape(text)

    def strong(self, inner: str) -> str:
        return f"*{inner}*" if inner.strip() else inner

    def em(self, inner: str) -> str:
        return f"_{inner}_" if inner.strip() else inner

    def strike(self, inner: str) -> str:
        return f"~{inner}~" if inner.strip() else inner

    def code(self, content: str) -> str:
        return f"`{escape(content)}`"

    def link(self, href: str, inner: str) -> str:
        if not href.lower().startswith(SAFE_SCHEMES):
            return inner
        url = escape(href).replace("|", "%7C")
        return f"<{url}|{inner}>" if inner and inner != escape(href) else f"<{url}>"

    def heading(self, inner: str, level: int) -> str:
        return f"*{inner}*"

    def code_block(self, content: str, language: str) -> str:
        return f"```\n{escape(content)}\n```"
