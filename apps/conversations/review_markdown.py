"""The bot's Markdown as safe HTML for the review transcript.

The model's text is untrusted: raw HTML in it is shown as text (``html=False`` escapes it), links
keep only http(s) and mailto targets (markdown-it drops ``javascript:`` and ``data:`` links), images
are shown as their alt text, and every link opens in a new tab without a referrer. The same rules as
the web chat widget, which renders answers as elements in the browser.
"""

from __future__ import annotations

from functools import cache

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: url.strip().lower().startswith(_SAFE_SCHEMES)  # type: ignore[method-assign]

    def image(renderer, tokens, idx, options, env):  # an answer never loads anything into the review page
        return renderer.renderInline(tokens[idx].children or [], options, env)

    def link_open(renderer, tokens, idx, options, env):
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


def markdown_html(text: str) -> SafeString:
    """``text`` (Markdown) as HTML with raw HTML escaped and only safe links."""
    return mark_safe(_parser().render(text or ""))  # noqa: S308 - html=False escapes every raw tag
