"""Statements to invoice grade: a simulated month reconciles to the yen in every format.

A month of the reference site is settled into a real SQLite ledger; its statements are checked
against sums made here straight from the ledger's entries, the XLSX by its cells and formulas,
the PDF by its text (pypdf), and the site file's issuer block by the real loader and CLI.
"""

import csv
import datetime as dt
import functools
import re
from decimal import ROUND_DOWN, Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.config import ConfigError, load_site
from gridctl.ledger import Ledger
from gridctl.reports import build_documents, export, invoice_context, month_range
from gridctl.settlement import settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
ISSUED = dt.date(2026, 9, 3)


@functools.lru_cache(maxsize=1)
def misono():
    return load_site(SITE_FILE)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """All of August 2026 (1,488 periods) settled into a fresh ledger."""
    site = misono()
    periods = periods_from_counters(parse_readings(format_readings(sample_month(site, 2026, 8))))
    store = Ledger(tmp_path_factory.mktemp("invoice") / "ledger.sqlite", "misono")
    store.record_many([(settle_period(site, p), p) for p in periods])
    yield store
    store.close()


@pytest.fixture(scope="module")
def docs(ledger):
    return build_documents(ledger, "2026-08", context=invoice_context(misono(), ISSUED))


def _cut(value: D) -> D:
    """Fractions cut on the magnitude (Juryo-B and the business plan: yen_mode floor)."""
    return value.quantize(D(1), rounding=ROUND_DOWN)


def test_a_simulated_month_reconciles_to_the_yen(ledger, docs):
    start, end = month_range("2026-08")
    lines = [m for p, _ in ledger.settlements(start, end) for m in p.members]
    summary, statements = docs[0], docs[1:]
    assert {d.member_id for d in statements} == {n.id for n in misono().nodes}
    rounding_lines = 0
    for doc in statements:
        mine = [m for m in lines if m.member_id == doc.member_id]
        exact = sum((m.p2p_paid_jpy + m.fee_jpy - m.p2p_received_jpy for m in mine), D(0))
        total = doc.value("total_payable_jpy")
        assert total == _cut(exact), doc.member_id
        charges = doc.section("charges")
        assert sum((line.value for line in charges), D(0)) == total, doc.member_id
        rounding_lines += any(line.key == "rounding_jpy" for line in charges)
        assert doc.value("taxable_total_jpy") == total
        assert doc.value("consumption_tax_jpy") == (abs(total) * 10 / 110).quantize(D(1), ROUND_DOWN) * (
            -1 if total < 0 else 1)
        assert doc.value("savings_jpy") == doc.value("grid_only_jpy") - doc.value("bill_jpy")
        assert doc.value("grid_only_jpy") == _cut(sum((m.grid_only_jpy for m in mine), D(0)))
        assert doc.value("bill_jpy") == _cut(sum((m.bill_jpy for m in mine), D(0)))
    assert rounding_lines, "a month of real amounts needs at least one rounding line"
    members_sum = sum((d.value("total_payable_jpy") for d in statements), D(0))
    fees = sum((m.fee_jpy for m in lines), D(0))
    assert summary.value("members_total_jpy") == members_sum
    assert summary.value("printed_fee_jpy") == _cut(fees)
    assert summary.value("rounding_residue_jpy") == members_sum - _cut(fees)
    assert abs(summary.value("rounding_residue_jpy")) <= len(statements)  # at most a yen per member
    assert summary.value("energy_check").endswith("OK") and summary.value("money_check").endswith("OK")


def test_statement_names_issuer_member_contract_period_and_prices(docs):
    mall = next(d for d in docs if d.member_id == "mall")
    assert mall.value("issuer_name") == misono().invoice.issuer_name
    assert mall.value("registration_number") == "T1234567890123"
    assert mall.value("member_name") == "Shopping mall (Urawa-Misono)"
    assert mall.value("contract") == "tepco-business-tou, 140 kW, buy-back post-fit"
    assert (mall.value("issue_date"), mall.value("billing_period_first"), mall.value("billing_period_last")) == (
        ISSUED, dt.date(2026, 8, 1), dt.date(2026, 8, 31))
    assert mall.value("statement_number") == "202608-mall"
    prices = mall.section("prices")
    assert {line.label_en.split(",")[0] for line in prices if "@" in line.label_en} == {
        "Grid import price tepco-business-tou@2025-04", "Grid export price post-fit@2025-04"}
    assert {line.value for line in prices if "import" in line.key} == {D("29.58"), D("36.68")}


def test_csv_has_key_numeric_value_and_printed_columns(ledger, tmp_path):
    export(ledger, "2026-08", "csv", tmp_path, "mall", invoice_context(misono(), ISSUED))
    with (tmp_path / "statement-mall-2026-08.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = {r["key"]: r for r in csv.DictReader(handle)}
    total = rows["total_payable_jpy"]
    assert re.fullmatch(r"-?\d+", total["value"]) and total["unit"] == "JPY"
    assert total["printed"] == f"{int(total['value']):,} 円"
    assert D(total["exact_value"]) != D(total["value"])  # the exact total, before rounding
    assert rows["issue_date"]["value"] == "2026-09-03"


def test_xlsx_numbers_formats_formulas_and_dates(ledger, docs, tmp_path):
    from openpyxl import load_workbook

    (path,) = export(ledger, "2026-08", "xlsx", tmp_path, None, invoice_context(misono(), ISSUED))
    book = load_workbook(path)
    for doc in docs:
        sheet = book["summary" if doc.kind == "summary" else doc.member_id]
        by_label = {row[1].value: row[2] for row in sheet.iter_rows(min_row=2) if row[1].value}
        cells = list(sheet.iter_rows(values_only=True))
        assert not any(isinstance(v, str) and re.fullmatch(r"[a-z0-9_]+_(jpy|kwh)", v) for row in cells for v in row), \
            "a raw key is visible"
        if doc.kind == "summary":
            total = by_label["Sum of members' totals"]
            assert by_label["Rounding residue (sum - fees)"].value == (
                f"={total.coordinate}-{by_label['Platform fees (rounded)'].coordinate}")
            expected = doc.value("members_total_jpy")
        else:
            total = by_label[doc.line("total_payable_jpy").label_en]
            expected = doc.value("total_payable_jpy")
            savings = by_label["Savings versus grid-only"]
            grid_only, bill = by_label["Grid-only bill"], by_label["Bill with P2P"]
            assert savings.value == f"={grid_only.coordinate}-{bill.coordinate}"
            assert grid_only.value - bill.value == doc.value("savings_jpy")
            for label in ("P2P purchases", "Platform fee", "P2P sales (credited)"):
                assert isinstance(by_label[label].value, int) and by_label[label].number_format == "#,##0"
            assert by_label["Grid import"].number_format == "#,##0"  # monthly kWh to integers
            issue = by_label["Issue date"]
            assert isinstance(issue.value, dt.datetime) and issue.value.date() == ISSUED
            assert issue.number_format == "yyyy-mm-dd"
        first, last = re.fullmatch(r"=SUM\(C(\d+):C(\d+)\)", total.value).groups()
        column = [sheet.cell(row=r, column=3).value for r in range(int(first), int(last) + 1)]
        assert all(isinstance(v, int) for v in column) and sum(column) == expected, doc.member_id
        assert total.number_format == "#,##0"
        day = next(row for row in sheet.iter_rows() if isinstance(row[0].value, dt.datetime))
        assert day[0].number_format == "yyyy-mm-dd" and isinstance(day[1].value, float | int)


def test_pdf_text_carries_issuer_registration_and_the_total_with_separators(ledger, docs, tmp_path):
    from pypdf import PdfReader

    (path,) = export(ledger, "2026-08", "pdf", tmp_path, None, invoice_context(misono(), ISSUED))
    reader = PdfReader(path)
    assert len(reader.pages) == len(docs)
    separated = 0
    for page, doc in zip(reader.pages[1:], docs[1:]):
        text = page.extract_text()
        total = doc.value("total_payable_jpy")
        separated += abs(total) >= 1000
        assert misono().invoice.issuer_name in text.replace("\n", " ")
        assert "T1234567890123" in text and "様" in text
        assert f"¥{abs(total):,}-" in text and f"{total:,}" in text
        assert "請求書" in text or "支払通知書" in text
        assert not re.search(r"\b[a-z0-9]+_(jpy|kwh)\b", text), "a raw key is printed"
    assert separated >= 2, "members with totals of four digits or more show the separator"


def test_registration_number_must_be_t_and_13_digits(tmp_path):
    text = SITE_FILE.read_text(encoding="utf-8").replace("T1234567890123", "T123456789012")
    bad = tmp_path / "site.yaml"
    bad.write_text(text, encoding="utf-8")
    (tmp_path / "devices").symlink_to(SITE_FILE.parent / "devices")
    with pytest.raises(ConfigError) as caught:
        load_site(bad)
    message = str(caught.value.issues[0])
    assert "invoice.registration_number" in message and "'T' and 13 digits" in message
    result = CliRunner().invoke(app, ["settle", "report", "--ledger", str(tmp_path / "none.sqlite"), "--month",
                                      "2026-08", "-c", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "registration_number" in result.output


def test_cli_issue_date_and_its_one_line_error(ledger, tmp_path):
    base = ["settle", "report", "--ledger", str(ledger.path), "--month", "2026-08", "--format", "csv",
            "--member", "store", "-c", str(SITE_FILE), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*base, "--issue-date", "2026-09-31"])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "--issue-date '2026-09-31'" in result.output
    result = CliRunner().invoke(app, [*base, "--issue-date", "2026-09-05"])
    assert result.exit_code == 0, result.output
    with (tmp_path / "statement-store-2026-08.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = {r["key"]: r["value"] for r in csv.DictReader(handle)}
    assert rows["issue_date"] == "2026-09-05" and rows["registration_number"] == "T1234567890123"
