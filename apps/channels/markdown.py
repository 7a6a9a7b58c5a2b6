"""Parse the model's Markdown once into a tree; each platform's ``render`` walks it into its own
dialect (Feishu card/post, WeCom and DingTalk Markdown subsets, Slack mrkdwn, Telegram HTML).

Built on markdown-it-py (CommonMark + tables + strikethrough). Raw HTML in model output is never
passed through: ``html`` is off, so ``<script>`` arrives as text and each renderer escapes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def pack_pieces(pieces: list[str], limit: int, *, separator: str = "\n\n", measure=len) -> list[str]:
    """Join consecutive ``pieces`` with ``separator`` into as few chunks as possible, each at most
    ``limit`` by ``measure``. Pieces are never cut: one longer than ``limit`` stays a chunk of its
    own, so callers split oversize pieces first (renderers do it per block, keeping markup balanced).
    Returns at least one chunk."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if not piece:
            continue
        candidate = f"{current}{separator}{piece}" if current else piece
        if current and measure(candidate) > limit:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current or not chunks:
        chunks.append(current)
    return chunks


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


# --- Markdown-subset dialects (Feishu card markdown, WeCom and DingTalk Markdown) -------------------


def _no_escape(text: str) -> str:
    return text


@dataclass(frozen=True)
class Dialect:
    """What a platform's Markdown subset supports. Unsupported constructs degrade to readable text
    (a heading to a bold line, a table to ``a | b`` lines, a code block to its bare lines)."""

    headings: bool = True  # "# Title" (else "**Title**")
    italic: str = "*"  # marker, "" when unsupported
    strike: str = "~~"
    code_inline: bool = True
    code_blocks: bool = True  # ``` fences
    tables: bool = False  # GitHub tables (else "a | b" lines)
    hr: str = "---"
    escape: Callable[[str], str] = _no_escape  # applied to text runs (not to code)


def render_dialect(markdown: str, dialect: Dialect) -> str:
    """``markdown`` re-written in a platform's Markdown subset, normalized (no raw HTML survives:
    it is parsed as text and passes through ``dialect.escape``)."""
    esc = dialect.escape

    def inline(node: SyntaxTreeNode) -> str:
        parts: list[str] = []
        for child in node.children:
            t = child.type
            if t == "text":
                parts.append(esc(child.content))
            elif t in ("softbreak", "hardbreak"):
                parts.append("\n")
            elif t == "strong":
                parts.append(f"**{inline(child)}**")
            elif t == "em":
                parts.append(f"{dialect.italic}{inline(child)}{dialect.italic}")
            elif t == "s":
                parts.append(f"{dialect.strike}{inline(child)}{dialect.strike}")
            elif t == "code_inline":
                parts.append(f"`{child.content}`" if dialect.code_inline else esc(child.content))
            elif t in ("link", "image"):
                href = child.attrs.get("href") or child.attrs.get("src") or ""
                label = inline(child) or esc(str(child.attrs.get("alt", ""))) or esc(str(href))
                parts.append(f"[{label}]({href})" if href else label)
            else:
                parts.append(inline(child))
        return "".join(parts)

    def block(node: SyntaxTreeNode, out: list[str]) -> None:
        t = node.type
        if t == "inline":
            out.append(inline(node))
        elif t == "paragraph":
            out.append("".join(_collect(node, block)))
        elif t == "heading":
            text = "".join(_collect(node, block))
            level = int(node.tag[1:]) if node.tag[1:].isdigit() else 1
            out.append(f"{'#' * level} {text}" if dialect.headings else f"**{text}**")
        elif t in ("bullet_list", "ordered_list"):
            start = int(node.attrs.get("start", 1) or 1) if t == "ordered_list" else 1
            lines = []
            for i, item in enumerate(node.children):
                marker = f"{start + i}. " if t == "ordered_list" else "- "
                body = "\n".join(_blocks(item, block)).split("\n")
                lines.append(marker + body[0])
                lines += ["   " + line if line else line for line in body[1:]]
            out.append("\n".join(lines))
        elif t == "blockquote":
            body = "\n\n".join(_blocks(node, block))
            out.append("\n".join("> " + line for line in body.split("\n")))
        elif t in ("fence", "code_block"):
            code = node.content.rstrip("\n")
            lang = (node.info or "").strip() if t == "fence" else ""
            out.append(f"```{lang}\n{code}\n```" if dialect.code_blocks else code)
        elif t == "hr":
            out.append(dialect.hr)
        elif t == "table":
            rows = [
                ["".join(_collect(cell, block)).replace("|", "\\|" if dialect.tables else "/") for cell in tr.children]
                for section in node.children
                for tr in section.children
            ]
            if dialect.tables and rows:
                lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
                lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            else:
                lines = [" | ".join(r) for r in rows]
            out.append("\n".join(lines))
        else:
            out.extend(_blocks(node, block))

    return "\n\n".join(p for p in _blocks(parse(markdown), block) if p.strip()).strip()


def _blocks(node: SyntaxTreeNode, block) -> list[str]:
    out: list[str] = []
    for child in node.children:
        block(child, out)
    return out


def _collect(node: SyntaxTreeNode, block) -> list[str]:
    return _blocks(node, block)


# --- Non-Markdown dialects (Slack mrkdwn, Telegram HTML, plain text) ---------------------------------


class TreeRenderer:
    """Walks the tree into a dialect whose marks are not Markdown's. The base class writes plain
    text; a subclass overrides ``escape`` and the marks (``strong``, ``link``, ``code_block`` …).

    ``render(markdown)`` returns one string; ``render_chunks(markdown, limit)`` returns messages
    each within ``limit`` (by ``measure``), cut between top-level blocks so markup stays balanced.
    """

    bullet = "• "

    def escape(self, text: str) -> str:
        return text

    def strong(self, inner: str) -> str:
        return inner

    def em(self, inner: str) -> str:
        return inner

    def strike(self, inner: str) -> str:
        return inner

    def code(self, content: str) -> str:
        return self.escape(content)

    def link(self, href: str, inner: str) -> str:
        return inner if not href or href == inner else f"{inner} ({self.escape(href)})"

    def image(self, src: str, alt: str) -> str:
        return self.link(src, self.escape(alt or src))

    def heading(self, inner: str, level: int) -> str:
        return inner

    def code_block(self, content: str, language: str) -> str:
        return self.escape(content)

    def quote(self, inner: str) -> str:
        return "\n".join("> " + line for line in inner.split("\n"))

    def rule(self) -> str:
        return "——————"

    def table(self, rows: list[list[str]]) -> str:
        """``rows`` hold each cell's plain text; the default shows them aligned in a code block."""
        widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
        lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
        return self.code_block("\n".join(lines), "")

    # -- walking ---------------------------------------------------------------------------------

    def render(self, markdown: str) -> str:
        return "\n\n".join(self.blocks(markdown))

    def blocks(self, markdown: str) -> list[str]:
        """The rendered top-level blocks of ``markdown`` (empty ones dropped)."""
        return [text for text in (self.block(node) for node in parse(markdown).children) if text.strip()]

    def render_chunks(self, markdown: str, limit: int, *, measure=len, separator: str = "\n\n") -> list[str]:
        """``markdown`` rendered into as few messages as possible, each at most ``limit``.
        A block too long for one message is split by itself: a code block into code blocks of
        whole lines, anything else into its plain text (formatting dropped, escaping kept)."""
        pieces: list[str] = []
        for node in parse(markdown).children:
            text = self.block(node)
            if not text.strip():
                continue
            if measure(text) <= limit:
                pieces.append(text)
            elif node.type in ("fence", "code_block"):
                pieces += self._split_code(node.content.rstrip("\n"), _fence_language(node), limit, measure)
            else:
                plain = TreeRenderer().block(node)
                parts = split_text(plain, limit, measure=lambda s: measure(self.escape(s)))
                pieces += [self.escape(p) for p in parts]
        return pack_pieces(pieces, limit, separator=separator, measure=measure)

    def _split_code(self, content: str, language: str, limit: int, measure) -> list[str]:
        def size(s: str) -> int:
            return measure(self.code_block(s, language))

        lines: list[str] = []
        for line in content.split("\n"):
            lines += split_text(line, limit, measure=size) if size(line) > limit else [line]
        return [self.code_block(c, language) for c in pack_pieces(lines, limit, separator="\n", measure=size)]

    def block(self, node: SyntaxTreeNode) -> str:
        t = node.type
        if t == "heading":
            level = int(node.tag[1:]) if node.tag[1:].isdigit() else 1
            return self.heading(self.inline(node), level)
        if t in ("bullet_list", "ordered_list"):
            return self._list(node, 0)
        if t == "blockquote":
            return self.quote("\n\n".join(b for b in (self.block(c) for c in node.children) if b))
        if t in ("fence", "code_block"):
            return self.code_block(node.content.rstrip("\n"), _fence_language(node))
        if t == "hr":
            return self.rule()
        if t == "table":
            rows = [[_plain(cell) for cell in tr.children] for section in node.children for tr in section.children]
            return self.table(rows) if rows else ""
        if t in ("paragraph", "inline"):
            return self.inline(node)
        return "\n\n".join(b for b in (self.block(c) for c in node.children) if b)

    def _list(self, node: SyntaxTreeNode, depth: int) -> str:
        ordered = node.type == "ordered_list"
        start = int(node.attrs.get("start", 1) or 1) if ordered else 1
        pad = "  " * depth
        lines: list[str] = []
        for i, item in enumerate(node.children):
            marker = f"{start + i}. " if ordered else self.bullet
            first = True
            for child in item.children:
                if child.type in ("bullet_list", "ordered_list"):
                    lines.append(self._list(child, depth + 1))
                    continue
                for line in self.block(child).split("\n"):
                    lines.append(pad + (marker if first else " " * len(marker)) + line)
                    first = False
            if first:
                lines.append(pad + marker.rstrip())
        return "\n".join(lines)

    def inline(self, node: SyntaxTreeNode) -> str:
        out: list[str] = []
        for child in node.children:
            t = child.type
            if t == "text":
                out.append(self.escape(child.content))
            elif t in ("softbreak", "hardbreak"):
                out.append("\n")  # a line break in model output is meant as one in chat
            elif t == "strong":
                out.append(self.strong(self.inline(child)))
            elif t == "em":
                out.append(self.em(self.inline(child)))
            elif t == "s":
                out.append(self.strike(self.inline(child)))
            elif t == "code_inline":
                out.append(self.code(child.content))
            elif t == "link":
                out.append(self.link(str(child.attrs.get("href", "")), self.inline(child)))
            elif t == "image":
                out.append(self.image(str(child.attrs.get("src", "")), _plain(child)))
            else:
                out.append(self.inline(child))
        return "".join(out)


def _fence_language(node: SyntaxTreeNode) -> str:
    return (node.info or "").strip().split(" ")[0] if node.type == "fence" else ""


def _plain(node: SyntaxTreeNode) -> str:
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain(c) for c in node.children)
