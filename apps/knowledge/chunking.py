"""Blocks to chunks, along the document's own structure.

A heading starts a new chunk and becomes its section title (with its parents: "Returns › Refunds");
so does a new page of a PDF or slide deck, so that a citation names the right page.
Paragraphs under one heading are packed together up to the target size; a paragraph larger than the
limit is cut at sentence ends (。！？.!?), then at the limit. A table is never mixed with prose: it
is cut between rows, and each piece repeats the table's header row so it still reads as a table.

Sizes are in estimated tokens (one per CJK character, one per four other characters), so a chunk
holds about the same amount of meaning in Chinese (~400 characters) and English (~1,600 characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .converters import Block
from .text import estimate_tokens


@dataclass
class ChunkText:
    section: str
    text: str
    page: int | None = None


_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+")


def split_blocks(blocks: list[Block], *, target: int) -> list[ChunkText]:
    limit = max(target, 50)
    headings: list[tuple[int, str]] = []
    chunks: list[ChunkText] = []
    parts: list[str] = []
    size = 0
    page: int | None = None

    def section() -> str:
        return " › ".join(text for _, text in headings)[:500]

    def flush() -> None:
        nonlocal parts, size, page
        if parts:
            chunks.append(ChunkText(section(), "\n\n".join(parts), page))
        parts, size, page = [], 0, None

    for block in blocks:
        if block.kind == "heading":
            flush()
            headings[:] = [(lvl, text) for lvl, text in headings if lvl < block.level]
            headings.append((block.level, block.text.strip()[:200]))
            continue
        if block.kind == "table":
            flush()
            for piece in _table_pieces(block.text, limit):
                chunks.append(ChunkText(section(), piece, block.page))
            continue
        if parts and block.page is not None and block.page != page:
            flush()  # a chunk stays on one page, so its citation names the right one
        for piece in _prose_pieces(block.text, limit):
            cost = estimate_tokens(piece)
            if parts and size + cost > limit:
                flush()
            if page is None:
                page = block.page
            parts.append(piece)
            size += cost
    flush()
    return chunks


def _prose_pieces(text: str, limit: int) -> list[str]:
    if estimate_tokens(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(text) if s and s.strip()):
        if estimate_tokens(sentence) > limit:
            if current:
                pieces.append(current.strip())
                current = ""
            pieces.extend(_hard_cut(sentence, limit))
            continue
        if current and estimate_tokens(current + sentence) > limit:
            pieces.append(current.strip())
            current = ""
        current += sentence if not current or _is_cjk_join(current, sentence) else " " + sentence
    if current.strip():
        pieces.append(current.strip())
    return pieces


def _is_cjk_join(left: str, right: str) -> bool:
    return bool(re.search(r"[\u3000-\u9fff\uff00-\uffef]$", left.rstrip()))


def _hard_cut(text: str, limit: int) -> list[str]:
    pieces = []
    while text:
        # Grow by characters until the estimate passes the limit (CJK: 1 token each, else ~4 per token).
        end = min(len(text), limit)
        while end < len(text) and estimate_tokens(text[:end]) < limit:
            end = min(len(text), end + max(1, (limit - estimate_tokens(text[:end])) * 2))
        cut = text.rfind(" ", 0, end) if end < len(text) else end
        cut = cut if cut > end // 2 else end
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    return [p for p in pieces if p]


def _table_pieces(text: str, limit: int) -> list[str]:
    rows = text.split("\n")
    if estimate_tokens(text) <= limit or len(rows) < 2:
        return _hard_cut(text, limit) if estimate_tokens(text) > limit else [text]
    header, body = rows[0], rows[1:]
    pieces: list[str] = []
    current = [header]
    size = estimate_tokens(header)
    for row in body:
        cost = estimate_tokens(row)
        if len(current) > 1 and size + cost > limit:
            pieces.append("\n".join(current))
            current, size = [header], estimate_tokens(header)
        current.append(row)
        size += cost
    if len(current) > 1:
        pieces.append("\n".join(current))
    return pieces
