"""Render statements and the block summary as CSV, XLSX (openpyxl) and PDF (reportlab).

Labels are Japanese and English. The PDF draws all its text, Japanese and English, in the
IPAexGothic TrueType font embedded as a subset (``gridctl.reports.fonts``), so it reads the same in
any viewer; the chart (P2P volume and mean price by day, bilingual labels, same font) is drawn with
matplotlib's Agg backend and embedded as PNG. The XLSX chart is a native Excel chart.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from gridctl.reports.fonts import chart_fonts, pdf_font
from gridctl.reports.statement import Document

CSV_HEADER = ("section", "key", "label_ja", "label_en", "value", "unit")
TABLE_HEADER = ("区分<br/>Section", "項目<br/>Item (ja)", "Item<br/>項目 (en)", "値<br/>Value", "単位<br/>Unit")
DAY_HEADER = ("day", "p2p_bought_kwh", "p2p_sold_kwh", "p2p_paid_jpy", "mean_price_jpy_per_kwh")


def _stem(doc: Document) -> str:
    return f"summary-{doc.month}" if doc.kind == "summary" else f"statement-{doc.member_id}-{doc.month}"


def write_csv(docs: Sequence[Document], out_dir: Path) -> list[Path]:
    """One UTF-8 (with BOM, for Excel) CSV per document: labelled lines, then the daily table."""
    paths = []
    for doc in docs:
        path = out_dir / f"{_stem(doc)}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            for line in doc.lines:
                writer.writerow([line.section, line.key, line.label_ja, line.label_en, str(line.value), line.unit])
            for d in doc.days:
                writer.writerow(["day", d.day.isoformat(), "日別P2P購入電力量", "daily P2P bought", str(d.bought_kwh), "kWh"])
        paths.append(path)
    return paths


def write_xlsx(docs: Sequence[Document], out_dir: Path, month: str) -> Path:
    """One workbook: a sheet per document (lines, then the daily table with a native chart)."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for doc in docs:
        sheet = book.create_sheet(title=("summary" if doc.kind == "summary" else doc.member_id)[:31])
        sheet.append(list(CSV_HEADER))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for line in doc.lines:
            value = line.value if isinstance(line.value, Decimal | int) else str(line.value)
            sheet.append([line.section, line.key, line.label_ja, line.label_en, value, line.unit])
        start = sheet.max_row + 2
        sheet.cell(row=start, column=1, value="日別 / Daily")
        sheet.append(list(DAY_HEADER))
        for d in doc.days:
            sheet.append([d.day.isoformat(), d.bought_kwh, d.sold_kwh, d.paid_jpy, d.mean_price_jpy_per_kwh])
        if doc.days:
            chart = BarChart()
            chart.title = "P2P volume by day [kWh]"
            data = Reference(sheet, min_col=2, min_row=start + 1, max_row=start + 1 + len(doc.days))
            chart.add_data(data, titles_from_data=True)
            chart.set_categories(Reference(sheet, min_col=1, min_row=start + 2, max_row=start + 1 + len(doc.days)))
            sheet.add_chart(chart, "H2")
        for column, width in zip("ABCDEF", (16, 22, 26, 34, 24, 8)):
            sheet.column_dimensions[column].width = width
    path = out_dir / f"settlement-{month}.xlsx"
    book.save(path)
    return path


def chart_png(doc: Document) -> bytes:
    """Daily P2P volume [kWh] (bars) and mean P2P price [JPY/kWh] (line) as a PNG, bilingual labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    with chart_fonts():
        fig, ax = plt.subplots(figsize=(7.5, 3.4), dpi=110)
        ax.bar([d.day for d in doc.days], [float(d.bought_kwh) for d in doc.days], color="#4c8bbf",
               label="P2P受電量 / P2P energy bought")
        ax.set_ylabel("P2P受電量 / P2P bought [kWh]")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m/%d"))
        handles, labels = ax.get_legend_handles_labels()
        priced = [(d.day, float(d.mean_price_jpy_per_kwh)) for d in doc.days if d.mean_price_jpy_per_kwh is not None]
        if priced:
            twin = ax.twinx()
            twin.plot([p[0] for p in priced], [p[1] for p in priced], color="#d9822b", marker=".",
                      label="平均P2P価格 / mean P2P price")
            twin.set_ylabel("平均価格 / Mean price [JPY/kWh]")
            extra_handles, extra_labels = twin.get_legend_handles_labels()
            handles, labels = handles + extra_handles, labels + extra_labels
        # Above the plot area, under the title, so it never hides a bar or a price point.
        ax.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
        ax.set_title(f"日別P2P受電量と平均価格 / P2P volume and price by day, {doc.month}", pad=22)
        fig.autofmt_xdate()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
    return buffer.getvalue()


def _table_style(font: str):
    from reportlab.lib import colors
    from reportlab.platypus import TableStyle

    return TableStyle([
        ("FONT", (0, 0), (-1, -1), font, 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])


def write_pdf(docs: Sequence[Document], out_dir: Path, month: str) -> Path:
    """One PDF: the summary with its chart first, then a page per member statement.

    All text is set in the embedded IPAexGothic font (FileNotFoundError if it is not installed).
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table

    font = pdf_font()
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    # Every body cell is a paragraph with CJK wrapping, which may break between any two
    # characters: long counterparty sections and the 64-digit hash wrap inside their cells.
    small = ParagraphStyle("small", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")
    path = out_dir / f"settlement-{month}.pdf"
    story: list = []
    for index, doc in enumerate(docs):
        if index:
            story.append(PageBreak())
        heading = (f"P2P電力取引 月次サマリー / Block summary {month}" if doc.kind == "summary"
                   else f"P2P電力取引 精算書 / Statement {doc.member_id} {month}")
        story += [Paragraph(heading, title), Spacer(1, 4 * mm)]
        cells = [[Paragraph(head, small) for head in TABLE_HEADER]]
        cells += [[Paragraph(escape(str(cell)), small) for cell in (ln.section, ln.label_ja, ln.label_en, ln.value, ln.unit)]
                  for ln in doc.lines]
        # 186 mm: the A4 width less both margins, so the grid never runs into the right margin.
        table = Table(cells, colWidths=[33 * mm, 35 * mm, 50 * mm, 52 * mm, 16 * mm], repeatRows=1)
        table.setStyle(_table_style(font))
        story.append(table)
        if doc.kind == "summary" and doc.days:
            story += [Spacer(1, 4 * mm), Image(io.BytesIO(chart_png(doc)), width=180 * mm, height=81.6 * mm)]
    # initialFontName: the page's default font is ours too, so no non-embedded Helvetica is listed.
    SimpleDocTemplate(str(path), pagesize=A4, title=f"gridctl settlement {month}", initialFontName=font,
                      leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm).build(story)
    return path
