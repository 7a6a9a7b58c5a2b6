"""Parse the model's Markdown once into a tree; each platform's ``render`` walks it into its own
dialect (Feishu card/post, WeCom and DingTalk Markdown subsets, Slack mrkdwn, Telegram HTML).

Built on markdown-it-py (CommonMark + tables + strikethrough). Raw HTML in model output is never
passed through: ``html`` is off, so ``<script>`` arrives as text and each renderer escapes it.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def parse(markdown: str) -> SyntaxTreeNode:
    """The syntax tree of ``markdown``. Node types: paragraph, heading, bullet_list, ordered_list,
    list_item, blockquote, fence, code_block, hr, table…, and inline: text, strong, em, s,
    code_inline, link (attrs["href"]), image, softbreak, hardbreak."""
    return SyntaxTreeNode(_parser().parse(markdown or ""))


def plain_text(markdown: str) -> str:
    """Markdown reduced to readable plain text (for platforms or places without formatting)."""
    out: list[str] = []

    def walk(node: SyntaxTreeNode) -> None:
        if node.type == "text" or node.type in ("code_inline",):
            out.append(node.content)
        elif node.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif node.type in ("fence", "code_block"):
            out.append(node.content.rstrip("\n") + "\n\n")
            return
        elif node.type == "link":
            for child in node.children:
                walk(child)
            href = node.attrs.get("href", "")
            out.append(f" ({href})" if href else "")
            return
        for child in node.children:
            walk(child)
        if node.type in ("paragraph", "heading"):
            out.append("\n\n")
        elif node.type == "list_item":
            out.append("\n")

    walk(parse(markdown))
    text = "".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def split_text(text: str, limit: int, *, measure=len) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` (by ``measure``: characters by default, or
    e.g. UTF-8 bytes), preferring paragraph, then line, then word boundaries."""
    pieces: list[str] = []
    rest = text
    while measure(rest) > limit:
        cut = _best_cut(rest, limit, measure)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _best_cut(text: str, limit: int, measure) -> int:
    # Largest prefix length (in characters) whose measure fits.
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    window = text[:lo]
    for sep in ("\n\n", "\n", " "):
        idx = window.rfind(sep)
        if idx > lo // 2:
            return idx + len(sep)
    return lo
