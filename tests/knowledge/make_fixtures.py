"""Writes the small real documents under tests/knowledge/files/ (committed; run again to remake):

.venv/bin/python -m tests.knowledge.make_fixtures
"""

from __future__ import annotations

import io
from pathlib import Path

from tests.knowledge.pdfgen import make_pdf

FILES = Path(__file__).parent / "files"


def handbook_pdf() -> bytes:
    return make_pdf(
        [
            [
                "Returns policy. You can return any item within 30 days of purchase with the receipt.",
                "Refunds go back to the original card within five working days.",
            ],
            ["Warranty. Every appliance carries a two-year warranty covering parts and labour."],
            ["Delivery. Orders over 99 dollars ship free; delivery takes two to four days."],
        ],
        title="Store handbook",
    )


def handbook_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "员工手册 Staff handbook"
    document.add_heading("门店服务", level=1)
    document.add_heading("营业时间", level=2)
    document.add_paragraph("我们每天上午九点开门，晚上九点关门。春节期间营业时间为上午十点到下午五点。")
    document.add_heading("会员积分", level=2)
    document.add_paragraph("每消费一元积一分，积分可以在下次购物时抵扣现金，一百积分抵一元。")
    document.add_heading("Parking", level=1)
    document.add_paragraph("Customers park free for two hours in the basement garage; validate the ticket at the till.")
    table = document.add_table(rows=3, cols=2)
    for row, (a, b) in zip(table.rows, [("Level", "Spaces"), ("B1", "120"), ("B2", "80")], strict=True):
        row.cells[0].text, row.cells[1].text = a, b
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def slides_pptx() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Revenue grew 12 percent over the quarter, driven by online orders."
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Regional sales"
    shape = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(1.5))
    for r, (a, b) in enumerate([("Region", "Sales"), ("North", "4.1 million"), ("South", "3.2 million")]):
        shape.table.cell(r, 0).text, shape.table.cell(r, 1).text = a, b
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def prices_xlsx() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Price list"
    for row in [("Product", "Price", "Stock"), ("Kettle", 29.5, 14), ("Toaster", 45, 3), ("电饭煲", 199, 8)]:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


PAGE_HTML = """<!doctype html>
<html><head><title>Shipping FAQ</title><style>body{color:red}</style><script>var secret = 1;</script></head>
<body><nav>Home | Shop | Contact</nav>
<main>
<h1>Shipping FAQ</h1>
<h2>International shipping</h2>
<p>We ship to 40 countries. International parcels arrive within 7 to 14 days.</p>
<h2>国际运费</h2>
<p>国际运费按重量计算，每公斤八十元。</p>
<table><tr><th>Zone</th><th>Fee</th></tr>
<tr><td>Asia</td><td>15 USD</td></tr><tr><td>Europe</td><td>25 USD</td></tr></table>
</main>
<footer>Copyright Example Shop</footer>
</body></html>
"""

NOTES_MD = """# Support guide

## Passwords
To reset your password, open Settings and choose "Forgot password". A link arrives by email.

## 发票
电子发票在订单完成后二十四小时内发送到您的邮箱。
"""


def main() -> None:
    FILES.mkdir(exist_ok=True)
    (FILES / "handbook.pdf").write_bytes(handbook_pdf())
    (FILES / "handbook.docx").write_bytes(handbook_docx())
    (FILES / "slides.pptx").write_bytes(slides_pptx())
    (FILES / "prices.xlsx").write_bytes(prices_xlsx())
    (FILES / "shipping.html").write_text(PAGE_HTML, encoding="utf-8")
    (FILES / "support.md").write_text(NOTES_MD, encoding="utf-8")
    (FILES / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")


if __name__ == "__main__":
    main()
