"""Render statements and the block summary as CSV and XLSX (openpyxl); the PDF is in ``pdf.py``.

CSV (UTF-8 with BOM, for Excel) is the machine layout: one row per line with its section, key,
labels, numeric value, unit, the printed text and the exact value where rounding changed it
(docs/statements.md lists the columns). XLSX is for people: no keys, labels in Japanese and
English, numbers as numbers with number formats, dates as dates, and the total, the members'
sum, the residue and the savings as formulas over the cells they add up. The XLSX chart is a
native Excel chart; the PDF's chart is drawn by :func:`chart_png`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from gridctl.reports.fonts import chart_fonts
from gridctl.reports.statement import Document, Line, format_amount

CSV_HEADER = ("section", "key", "label_ja", "label_en", "value", "unit", "printed", "exact_value")
DAY_HEADER = ("日付 / Day", "P2P購入 / P2P bought [kWh]", "P2P販売 / P2P sold [kWh]",
              "P2P支払 / P2P paid [JPY]", "平均価格 / Mean price [JPY/kWh]")
UNIT_LABELS = {"JPY": "円", "kWh": "kWh", "JPY/kWh": "円/kWh", "": ""}
DATE_FORMAT = "yyyy-mm-dd"
#: Section headings of the XLSX and PDF, in the order they are laid out.
SECTIONS = {
    "header": "記載事項 / Particulars",
    "charges": "ご請求明細 / Charges",
    "total": "",
    "tax": "消費税 / Consumption tax",
    "energy": "電力量 / Energy",
    "prices": "料金単価 / Unit prices",
    "reference": "参考: 系統のみとの比較 / Reference: versus grid only",
    "counterparty": "取引相手別 / By counterparty",
    "money": "金額 / Money",
    "members": "組合員別精算額 / Members' totals",
    "members_total": "",
    "reconciliation": "照合 / Reconciliation",
}


def stem(doc: Document) -> str:
    """File name stem of a document."""
    return f"summary-{doc.month}" if doc.kind == "summary" else f"statement-{doc.member_id}-{doc.month}"


def title(doc: Document) -> str:
    """The document's bilingual title."""
    if doc.kind == "summary":
        return f"P2P電力取引 月次サマリー / Block summary {doc.month}"
    payout = doc.value("total_payable_jpy") < 0  # type: ignore[operator]
    return "支払通知書 / Payment notice" if payout else "請求書 / Invoice"


def printed(line: Line) -> str:
    """A line's value as printed, with its unit (円 for yen)."""
    unit = UNIT_LABELS.get(line.unit, line.unit)
    return f"{format_amount(line.value)} {unit}".rstrip()


def write_csv(docs: Sequence[Document], out_dir: Path) -> list[Path]:
    """One CSV per document: labelled lines, then the daily table (section 'day')."""
    paths = []
    for doc in docs:
        path = out_dir / f"{stem(doc)}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            for line in doc.lines:
                value = line.value.isoformat() if isinstance(line.value, dt.date) else str(line.value)
                writer.writerow([line.section, line.key, line.label_ja, line.label_en, value, line.unit,
                                 printed(line), "" if line.exact is None else str(line.exact)])
            for d in doc.days:
                writer.writerow(["day", d.day.isoformat(), "日別P2P購入電力量", "daily P2P bought",
                                 str(d.bought_kwh), "kWh", f"{format_amount(d.bought_kwh)} kWh", ""])
        paths.append(path)
    return paths


def number_format(value: Decimal | int) -> str:
    """Excel number format showing a value's own decimals with thousands separators."""
    places = max(0, -value.as_tuple().exponent) if isinstance(value, Decimal) else 0  # type: ignore[operator]
    return "#,##0" + ("." + "0" * places if places else "")


#: Formula lines: key -> how its cell is computed from other rows of the sheet.
_SUM_OF = {"total_payable_jpy": "charges", "members_total_jpy": "members"}


def _formula(line: Line, rows: dict[str, int], section_rows: dict[str, list[int]]) -> str | None:
    if line.key in _SUM_OF:
        lines = section_rows[_SUM_OF[line.key]]
        return f"=SUM(C{min(lines)}:C{max(lines)})"
    if line.key == "savings_jpy" and {"grid_only_jpy", "bill_jpy"} <= rows.keys():
        return f"=C{rows['grid_only_jpy']}-C{rows['bill_jpy']}"
    if line.key == "rounding_residue_jpy":
        credit = f"-C{rows['printed_credit_jpy']}" if "printed_credit_jpy" in rows else ""
        return f"=C{rows['members_total_jpy']}-C{rows['printed_fee_jpy']}{credit}"
    if line.key == "taxable_total_jpy":
        return f"=C{rows['total_payable_jpy']}"
    return None


def _write_lines(sheet, doc: Document) -> None:  # noqa: ANN001 - an openpyxl worksheet
    from openpyxl.styles import Font

    rows: dict[str, int] = {}
    section_rows: dict[str, list[int]] = {}
    current = None
    for line in doc.lines:
        if line.section != current:
            current = line.section
            heading = SECTIONS.get(current, current)
            if heading:
                sheet.append([heading])
                sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
        row = sheet.max_row + 1
        rows[line.key] = row
        section_rows.setdefault(line.section, []).append(row)
        formula = _formula(line, rows, section_rows)
        sheet.append([line.label_ja, line.label_en, formula or line.value, UNIT_LABELS.get(line.unit, line.unit)])
        cell = sheet.cell(row=row, column=3)
        if isinstance(line.value, dt.date):
            cell.number_format = DATE_FORMAT
        elif isinstance(line.value, Decimal | int):
            cell.number_format = number_format(line.value)
        if line.section in ("total", "members_total") or line.key == "total_payable_jpy":
            for column in (1, 2, 3):
                sheet.cell(row=row, column=column).font = Font(bold=True)


def _write_days(sheet, doc: Document) -> None:  # noqa: ANN001 - an openpyxl worksheet
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    sheet.append([])
    sheet.append(["日別 / Daily"])
    sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    sheet.append(list(DAY_HEADER))
    start = sheet.max_row
    for d in doc.days:
        sheet.append([d.day, d.bought_kwh, d.sold_kwh, d.paid_jpy, d.mean_price_jpy_per_kwh])
        row = sheet.max_row
        sheet.cell(row=row, column=1).number_format = DATE_FORMAT
        for column, fmt in zip((2, 3, 4, 5), ("#,##0.000", "#,##0.000", "#,##0.00", "#,##0.00")):
            sheet.cell(row=row, column=column).number_format = fmt
    if doc.days:
        chart = BarChart()
        chart.title = "P2P volume by day [kWh]"
        chart.add_data(Reference(sheet, min_col=2, min_row=start, max_row=start + len(doc.days)), titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=1, min_row=start + 1, max_row=start + len(doc.days)))
        sheet.add_chart(chart, "G2")


def write_xlsx(docs: Sequence[Document], out_dir: Path, month: str) -> Path:
    """One workbook: a sheet per document (title, lines by section, daily table with a chart)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for doc in docs:
        sheet = book.create_sheet(title=("summary" if doc.kind == "summary" else doc.member_id)[:31])
        sheet.append([title(doc)])
        sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
        if doc.issuer is not None:
            sheet.append([doc.issuer.name, f"登録番号 / Registration No. {doc.issuer.registration_number}"])
        _write_lines(sheet, doc)
        _write_days(sheet, doc)
        for column, width in zip("ABCDE", (30, 40, 18, 8, 18)):
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


def write_pdf(docs: Sequence[Document], out_dir: Path, month: str) -> Path:
    """One PDF: the summary first, then an invoice page per member (see ``pdf.py``)."""
    from gridctl.reports.pdf import write_pdf as write

    return write(docs, out_dir, month)
