"""Documents to structured text: a list of blocks (headings, paragraphs, tables) in reading order.

One small, well-kept library per format — pypdf (PDF), python-docx (DOCX), python-pptx (PPTX),
openpyxl (XLSX), BeautifulSoup + markdownify (HTML) — rather than an all-formats converter: these
five are pure Python or lxml-based, install in seconds, and keep the structure Parley splits on
(Word heading styles, slide titles, sheet names, table rows). docs/knowledge.md says more.

Every converter raises ``ConversionError`` with a sentence a tenant admin can act on.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _


class ConversionError(Exception):
    """The document cannot be read; the message says why (shown as the document's error)."""


@dataclass
class Block:
    kind: str  # heading | paragraph | table
    text: str
    level: int = 0  # headings: 1 (top) … 6
    page: int | None = None  # PDF page / slide number, from 1


@dataclass
class Converted:
    blocks: list[Block]
    pages: int = 0
    title: str = ""


EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
}
CONTENT_TYPES = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}


def supported_extensions() -> str:
    return ", ".join(sorted(EXTENSIONS))


def format_of(filename: str = "", content_type: str = "") -> str | None:
    """The format by the file name's extension; by the content type only for a name without one
    (a URL's path). None: not supported."""
    name = (filename or "").lower().rsplit("/", 1)[-1]
    if "." in name:
        ext = "." + name.rsplit(".", 1)[1]
        if ext in EXTENSIONS:
            return EXTENSIONS[ext]
        if filename and "/" not in filename:
            return None  # an uploaded file's own extension says what it is
    return CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower())


def convert(data: bytes, *, fmt: str) -> Converted:
    try:
        return _CONVERTERS[fmt](data)
    except ConversionError:
        raise
    except Exception as exc:  # a damaged file: the library's own complaint, named
        raise ConversionError(
            _("The %(format)s file could not be read (%(error)s).") % {"format": fmt.upper(), "error": _short(exc)}
        ) from exc


def _short(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:200]


def decode_text(data: bytes) -> str:
    """Text files: UTF-8 (with or without BOM), else GB18030 (Chinese Windows), else Latin-1."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


# --- Markdown and plain text -----------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")


def markdown_blocks(text: str) -> list[Block]:
    """Headings (``#``), tables (``| … |`` lines) and paragraphs (blank-line separated)."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    table: list[str] = []
    fence = False

    def flush() -> None:
        if paragraph:
            joined = "\n".join(paragraph).strip()
            if joined:
                blocks.append(Block("paragraph", joined))
            paragraph.clear()
        if table:
            rows = [row for row in table if not _TABLE_RULE.match(row)]
            if rows:
                blocks.append(Block("table", "\n".join(r.strip() for r in rows)))
            table.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip().startswith("```"):
            fence = not fence
            paragraph.append(line)
            continue
        if fence:
            paragraph.append(line)
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            blocks.append(Block("heading", heading.group(2).strip(), level=len(heading.group(1))))
        elif _TABLE_ROW.match(line):
            if paragraph:
                flush()
            table.append(line)
        elif not line.strip():
            flush()
        else:
            if table:
                flush()
            paragraph.append(line)
    flush()
    return blocks


def _markdown(data: bytes) -> Converted:
    return Converted(markdown_blocks(decode_text(data)))


def _text(data: bytes) -> Converted:
    text = decode_text(data)
    blocks = [Block("paragraph", part.strip()) for part in re.split(r"\n\s*\n", text) if part.strip()]
    return Converted(blocks)


# --- HTML ------------------------------------------------------------------------------------------


def _html(data: bytes) -> Converted:
    from bs4 import BeautifulSoup
    from markdownify import markdownify

    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "form", "iframe", "svg", "template"]):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    markdown = markdownify(str(root), heading_style="ATX", strip=["img"])
    return Converted(markdown_blocks(markdown), title=title[:300])


# --- PDF -------------------------------------------------------------------------------------------


def _pdf(data: bytes) -> Converted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
    except PdfReadError as exc:
        raise ConversionError(_("This is not a readable PDF file (%(error)s).") % {"error": _short(exc)}) from exc
    if reader.is_encrypted:
        with contextlib.suppress(Exception):  # many "encrypted" PDFs open with the empty password
            reader.decrypt("")
        if reader.is_encrypted and not _opens(reader):
            raise ConversionError(_("The PDF is password-protected; upload a copy without a password."))
    blocks: list[Block] = []
    title = ""
    try:
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception:  # damaged metadata is no reason to refuse the text
        title = ""
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        for part in re.split(r"\n\s*\n", text):
            lines = [line.strip() for line in part.split("\n") if line.strip()]
            if lines:
                blocks.append(Block("paragraph", _join_lines(lines), page=number))
    if not any(b.text for b in blocks):
        raise ConversionError(
            _("No text could be read from this PDF (a scan without a text layer?). Run it through OCR first.")
        )
    return Converted(blocks, pages=len(reader.pages), title=title[:300])


def _opens(reader) -> bool:
    try:
        _ = reader.pages[0]
        return True
    except Exception:
        return False


def _join_lines(lines: list[str]) -> str:
    """Lines of a PDF paragraph joined: no space between CJK characters, a space otherwise."""
    out = lines[0]
    for line in lines[1:]:
        if re.search(r"[\u3000-\u9fff\uff00-\uffef]$", out) or re.match(r"^[\u3000-\u9fff\uff00-\uffef]", line):
            out += line
        elif out.endswith("-") and line[:1].islower():
            out = out[:-1] + line
        else:
            out += "\n" + line
    return out


# --- DOCX ------------------------------------------------------------------------------------------


def _docx(data: bytes) -> Converted:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            level = _heading_level(style)
            blocks.append(Block("heading", text, level=level) if level else Block("paragraph", text))
        elif isinstance(item, Table):
            rows = [_row([cell.text for cell in row.cells]) for row in item.rows]
            rows = [r for r in rows if r.strip("| ")]
            if rows:
                blocks.append(Block("table", "\n".join(rows)))
    title = document.core_properties.title or ""
    return Converted(blocks, title=title[:300])


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.match(r"^(?:Heading|标题)\s*(\d)$", style)
    return min(int(match.group(1)), 6) if match else 0


def _row(cells: list[str]) -> str:
    """One table row as a Markdown row (cells de-duplicated where Word repeats a merged cell)."""
    out: list[str] = []
    for cell in cells:
        cell = " ".join(cell.split()).replace("|", "/")
        if out and cell == out[-1] and cell:
            continue
        out.append(cell)
    return "| " + " | ".join(out) + " |"


# --- PPTX ------------------------------------------------------------------------------------------


def _pptx(data: bytes) -> Converted:
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    blocks: list[Block] = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        blocks.append(Block("heading", title or _("Slide %(n)s") % {"n": number}, level=2, page=number))
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                rows = [_row([cell.text for cell in row.cells]) for row in shape.table.rows]
                blocks.append(Block("table", "\n".join(rows), page=number))
            elif shape.has_text_frame:
                text = "\n".join(p.text.strip() for p in shape.text_frame.paragraphs if p.text.strip())
                if text:
                    blocks.append(Block("paragraph", text, page=number))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                blocks.append(Block("paragraph", notes, page=number))
    return Converted(blocks, pages=len(presentation.slides))


# --- XLSX ------------------------------------------------------------------------------------------

#: Rows of one sheet read at most (a sheet is data, not prose; the rest is left out, said in the docs).
MAX_SHEET_ROWS = 20_000


def _xlsx(data: bytes) -> Converted:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    blocks: list[Block] = []
    try:
        for sheet in workbook.worksheets:
            blocks.append(Block("heading", sheet.title, level=2))
            rows = list(_sheet_rows(sheet))
            if rows:
                blocks.append(Block("table", "\n".join(rows)))
    finally:
        workbook.close()
    return Converted(blocks, pages=len(workbook.worksheets))


def _sheet_rows(sheet) -> Iterator[str]:
    for count, row in enumerate(sheet.iter_rows(values_only=True)):
        if count >= MAX_SHEET_ROWS:
            return
        cells = ["" if value is None else str(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        if any(cells):
            yield "| " + " | ".join(" ".join(c.split()).replace("|", "/") for c in cells) + " |"


_CONVERTERS = {
    "pdf": _pdf,
    "docx": _docx,
    "pptx": _pptx,
    "xlsx": _xlsx,
    "markdown": _markdown,
    "html": _html,
    "text": _text,
}
