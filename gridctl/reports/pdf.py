"""The PDF: the block summary, then one invoice page per member (reportlab, A4).

A member page is laid out as a Japanese qualified invoice: title, statement number and issue
date; the member (name 様, contract, billing period) and the issuer (name, address, contact,
registration number); the amount due in a box; the charges with the rounding line and the
total; the tax box (per rate, the tax-inclusive total and the tax it contains); energy, unit
prices, the grid-only comparison and the counterparties; the rounding rule and the ledger hash.

All text, Japanese and English, is set in IPAexGothic embedded as a subset
(``gridctl.reports.fonts``), so it reads the same in any viewer. No raw keys are printed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from gridctl.reports.fonts import pdf_font
from gridctl.reports.render import SECTIONS, UNIT_LABELS, chart_png, title
from gridctl.reports.statement import Document, Line, format_amount

#: Column widths of the line tables [mm]: label (ja / en), value, unit; 186 mm = A4 less margins.
COLUMNS_MM = (120, 48, 18)
MARGIN_MM = 12
ROUNDING_NOTE = ("端数処理: 各行を一度だけ円単位に処理(金額の絶対値に対し、料金表の方式で)し、合計は各行の和です。"
                 "差額は端数調整行に表示します。消費税は税率ごとに請求書単位で一度計算します。 / "
                 "Rounding: each line is rounded once to whole yen (on its magnitude, by the tariff's mode); "
                 "the total is the sum of the printed lines, with a rounding adjustment line where needed; "
                 "consumption tax is computed once per statement and rate.")


class _Styles:
    def __init__(self) -> None:
        from reportlab.lib.enums import TA_RIGHT
        from reportlab.lib.styles import ParagraphStyle

        font = pdf_font()
        self.font = font
        self.title = ParagraphStyle("title", fontName=font, fontSize=16, leading=20)
        self.heading = ParagraphStyle("heading", fontName=font, fontSize=9, leading=12, spaceBefore=4)
        # CJK wrapping may break between any two characters: long names and the hash wrap.
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=7.5, leading=9.5, wordWrap="CJK")
        self.right = ParagraphStyle("right", parent=self.cell, alignment=TA_RIGHT)
        self.big = ParagraphStyle("big", fontName=font, fontSize=12, leading=15, wordWrap="CJK")
        self.amount = ParagraphStyle("amount", fontName=font, fontSize=15, leading=19, alignment=TA_RIGHT)
        self.registration = ParagraphStyle("registration", fontName=font, fontSize=9.5, leading=12)
        self.note = ParagraphStyle("note", fontName=font, fontSize=6.5, leading=8.5, wordWrap="CJK")


def _p(text: str, style) -> object:  # noqa: ANN001 - a reportlab ParagraphStyle
    from reportlab.platypus import Paragraph

    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _grid(font: str, bold_rows: Sequence[int] = ()):  # noqa: ANN202 - a reportlab TableStyle
    from reportlab.lib import colors
    from reportlab.platypus import TableStyle

    commands = [
        ("FONT", (0, 0), (-1, -1), font, 7.5),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    commands += [("BACKGROUND", (0, row), (-1, row), colors.HexColor("#dde6f0")) for row in bold_rows]
    return TableStyle(commands)


def _line_table(lines: Sequence[Line], styles: _Styles, emphasised: Sequence[str] = ()) -> object:
    from reportlab.lib.units import mm
    from reportlab.platypus import Table

    if all(isinstance(ln.value, str) for ln in lines):  # checks and hashes: text, wide and left-aligned
        cells = [[_p(f"{ln.label_ja} / {ln.label_en}", styles.cell), _p(ln.value, styles.cell)] for ln in lines]
        table = Table(cells, colWidths=[60 * mm, sum(COLUMNS_MM) * mm - 60 * mm])
    else:
        cells = [[_p(f"{ln.label_ja} / {ln.label_en}", styles.cell), _p(format_amount(ln.value), styles.right),
                  _p(UNIT_LABELS.get(ln.unit, ln.unit), styles.cell)] for ln in lines]
        table = Table(cells, colWidths=[w * mm for w in COLUMNS_MM])
    table.setStyle(_grid(styles.font, [i for i, ln in enumerate(lines) if ln.key in emphasised]))
    return table


def _sections(doc: Document, styles: _Styles, names: Sequence[str], emphasised: Sequence[str] = ()) -> list:
    story: list = []
    for name in names:
        lines = doc.section(name)
        if not lines:
            continue
        if SECTIONS.get(name):
            story.append(_p(SECTIONS[name], styles.heading))
        story.append(_line_table(lines, styles, emphasised))
    return story


def _parties(doc: Document, styles: _Styles) -> object:
    """Member block (left) and issuer block (right), side by side."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table

    party = doc.party
    member = [_p(f"{party.name} 様", styles.big), _p(f"組合員ID / Member id: {party.member_id}", styles.cell),
              _p(f"契約 / Contract: {party.contract}", styles.cell)]
    if party.contract_number:
        member.append(_p(f"契約番号 / Contract number: {party.contract_number}", styles.cell))
    member.append(_p(f"請求期間 / Billing period: {doc.period_first:%Y年%m月%d日} - {doc.period_last:%Y年%m月%d日} "
                     f"({doc.period_first.isoformat()} to {doc.period_last.isoformat()})", styles.cell))
    issuer = doc.issuer
    if issuer is None:
        right = [_p("発行者未設定: 適格請求書ではありません / No issuer configured (site file 'invoice:'): "
                    "not a qualified invoice", styles.cell)]
    else:
        right = [_p(issuer.name, styles.big)]
        right += [_p(text, styles.cell) for text in (issuer.address, issuer.contact) if text]
        right.append(_p(f"登録番号 / Registration No.: {issuer.registration_number}", styles.registration))
    table = Table([[member, right]], colWidths=[100 * mm, 86 * mm])
    table.setStyle(_grid(styles.font))
    return table


def _statement_page(doc: Document, styles: _Styles) -> list:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer, Table

    total = doc.line("total_payable_jpy")  # the title says which way it flows: the box shows the magnitude
    head = Table([[_p(title(doc), styles.title),
                   _p(f"請求書番号 / No. {doc.number}\n発行日 / Issue date: {doc.issue_date:%Y年%m月%d日} "
                      f"({doc.issue_date.isoformat()})", styles.right)]], colWidths=[100 * mm, 86 * mm])
    head.setStyle([("FONT", (0, 0), (-1, -1), styles.font, 7.5)])  # else reportlab lists a Helvetica
    amount = Table([[_p(f"{total.label_ja} / {total.label_en}", styles.big), _p(f"¥{format_amount(abs(total.value))}-",
                                                                              styles.amount)]],
                   colWidths=[110 * mm, 76 * mm])
    amount.setStyle(_grid(styles.font, [0]))
    story = [head, Spacer(1, 2 * mm), _parties(doc, styles), Spacer(1, 3 * mm), amount]
    story += _sections(doc, styles, ("charges", "total", "tax"), emphasised=("total_payable_jpy",))
    story += _sections(doc, styles, ("energy", "prices", "reference"))
    story += _counterparties(doc, styles)
    story += [Spacer(1, 2 * mm), _p(ROUNDING_NOTE, styles.note),
              _p(f"台帳ハッシュ / Ledger hash (SHA-256): {doc.head_hash}", styles.note)]
    return story


def _counterparties(doc: Document, styles: _Styles) -> list:
    """One row per counterparty: bought, sold [kWh], paid, received [JPY] (exact)."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table

    lines = doc.section("counterparty")
    if not lines:
        return []
    rows: dict[str, list[str]] = {}
    for ln in lines:
        party, _, _ = ln.key.rpartition(":")
        rows.setdefault(party, []).append(format_amount(ln.value))
    header = ["相手 / Counterparty", "購入 / Bought [kWh]", "販売 / Sold [kWh]", "支払 / Paid [円] (端数処理前 / exact)",
              "受取 / Received [円] (端数処理前 / exact)"]
    cells = [[_p(h, styles.cell) for h in header]]
    cells += [[_p(party, styles.cell)] + [_p(v, styles.right) for v in values] for party, values in rows.items()]
    table = Table(cells, colWidths=[46 * mm, 35 * mm, 35 * mm, 35 * mm, 35 * mm])
    table.setStyle(_grid(styles.font, [0]))
    return [_p(SECTIONS["counterparty"], styles.heading), table]


def _summary_page(doc: Document, styles: _Styles) -> list:
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Spacer

    issuer = (f"{doc.issuer.name}  登録番号 / Registration No. {doc.issuer.registration_number}"
              if doc.issuer is not None else "")
    story = [_p(title(doc), styles.title), _p(issuer, styles.cell), Spacer(1, 2 * mm)]
    story += _sections(doc, styles, ("header", "energy", "money", "members", "members_total", "reconciliation"),
                       emphasised=("members_total_jpy", "rounding_residue_jpy"))
    if doc.days:
        story += [Spacer(1, 3 * mm), Image(io.BytesIO(chart_png(doc)), width=165 * mm, height=74.8 * mm)]
    return story


def write_pdf(docs: Sequence[Document], out_dir: Path, month: str) -> Path:
    """One PDF: the summary with its chart first, then a page per member statement.

    All text is set in the embedded IPAexGothic font (FileNotFoundError if it is not installed).
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, SimpleDocTemplate

    styles = _Styles()
    path = out_dir / f"settlement-{month}.pdf"
    story: list = []
    for index, doc in enumerate(docs):
        if index:
            story.append(PageBreak())
        story += _summary_page(doc, styles) if doc.kind == "summary" else _statement_page(doc, styles)
    # initialFontName: the page's default font is ours too, so no non-embedded Helvetica is listed.
    SimpleDocTemplate(str(path), pagesize=A4, title=f"gridctl settlement {month}", initialFontName=styles.font,
                      leftMargin=MARGIN_MM * mm, rightMargin=MARGIN_MM * mm, topMargin=MARGIN_MM * mm,
                      bottomMargin=MARGIN_MM * mm).build(story)
    return path
