"""Reports open in every format and their totals equal the ledger's (independently summed here)."""

import csv
import functools
import io
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal as D
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.ledger import Ledger
from gridctl.reports import build_documents, export, month_range
from gridctl.reports.statement import round_with, tax_included
from gridctl.settlement import settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"


@functools.lru_cache(maxsize=1)
def misono():
    return load_site(SITE_FILE)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """Ten days of August 2026 (480 periods) settled into a fresh ledger."""
    site = misono()
    periods = periods_from_counters(parse_readings(format_readings(sample_month(site, 2026, 8))))[:480]
    path = tmp_path_factory.mktemp("reports") / "ledger.sqlite"
    store = Ledger(path, "misono")
    store.record_many([(settle_period(site, p), p) for p in periods])
    yield store
    store.close()


@pytest.fixture(scope="module")
def truth(ledger):
    """Totals summed straight from the ledger's current settlements."""
    start, end = month_range("2026-08")
    periods = [s for s, _ in ledger.settlements(start, end)]
    lines = [m for p in periods for m in p.members]
    block = {
        "sold_kwh": sum(p.sold_kwh for p in periods), "bought_kwh": sum(p.bought_kwh for p in periods),
        "losses_kwh": sum(p.losses_kwh for p in periods),
        "paid_jpy": sum(m.p2p_paid_jpy for m in lines), "fee_jpy": sum(m.fee_jpy for m in lines),
        "received_jpy": sum(m.p2p_received_jpy for m in lines),
    }
    members = {}
    for member in {m.member_id for m in lines}:
        mine = [m for m in lines if m.member_id == member]
        payable = sum(m.p2p_paid_jpy + m.fee_jpy - m.p2p_received_jpy for m in mine)
        members[member] = {
            # Juryo-B and the business plan both cut yen fractions (of the magnitude: a payout
            # of 3,380.6 is 3,380) and round kWh half up to integers
            "total_payable_jpy": payable.quantize(D(1), rounding=ROUND_DOWN),
            "p2p_sold_kwh": sum(m.p2p_sold_kwh for m in mine).quantize(D(1), rounding=ROUND_HALF_UP),
            "periods": len(mine),
        }
    return {"block": block, "members": members, "periods": len(periods), "head": ledger.head_hash()}


def test_tax_and_rounding_rules():
    # 1,100 JPY tax-inclusive at 10 % holds 100 JPY tax; 1,099 holds 99.909... -> 99 (floor)
    assert tax_included(D(1100), D(10), "floor") == D(100)
    assert tax_included(D(1099), D(10), "floor") == D(99)
    assert tax_included(D(1099), D(10), "half_up") == D(100)
    assert tax_included(D(-1100), D(10), "floor") == D(-100)
    assert round_with(D("12.5"), 0, "half_up") == D(13) and round_with(D("12.99"), 0, "floor") == D(12)


def test_csv_totals_equal_the_ledger(ledger, truth, tmp_path):
    files = export(ledger, "2026-08", "csv", tmp_path)
    assert len(files) == 1 + len(misono().nodes)
    with (tmp_path / "summary-2026-08.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = {r["key"]: r for r in csv.DictReader(handle)}
    for key, value in truth["block"].items():
        assert D(rows[key]["value"]) == value, key
    assert rows["ledger_head_sha256"]["value"] == truth["head"]
    assert rows["energy_check"]["value"].endswith("OK") and rows["money_check"]["value"].endswith("OK")
    assert rows["sold_kwh"]["label_ja"] == "連系線送電量"  # link totals: P2P-priced and relayed
    for member, expected in truth["members"].items():
        with (tmp_path / f"statement-{member}-2026-08.csv").open(encoding="utf-8-sig", newline="") as handle:
            mine = {r["key"]: r["value"] for r in csv.DictReader(handle) if r["section"] != "day"}
        assert D(mine["total_payable_jpy"]) == expected["total_payable_jpy"], member
        assert D(mine["p2p_sold_kwh"]) == expected["p2p_sold_kwh"], member
        assert int(mine["periods"]) == expected["periods"] == truth["periods"]


def test_xlsx_opens_and_totals_equal_the_ledger(ledger, truth, tmp_path):
    from openpyxl import load_workbook

    (path,) = export(ledger, "2026-08", "xlsx", tmp_path)
    book = load_workbook(path)
    assert set(book.sheetnames) == {"summary", *truth["members"]}
    # no keys in the workbook: rows are found by their English label
    summary = {row[1]: row[2] for row in book["summary"].iter_rows(min_row=2, values_only=True) if row[1]}
    labels = {"sold_kwh": "Energy sent on the links", "bought_kwh": "Energy received from the links", "losses_kwh": "Link losses",
              "paid_jpy": "P2P paid by buyers", "fee_jpy": "Platform fees", "received_jpy": "P2P received by sellers"}
    for key, value in truth["block"].items():
        assert D(str(summary[labels[key]])) == value, key
    assert book["summary"]._charts, "the summary sheet carries its chart"
    for member, expected in truth["members"].items():
        rows = list(book[member].iter_rows(min_row=2))
        (total,) = [row[2] for row in rows if row[1].value in ("Amount due (tax incl.)", "Amount we pay you (tax incl.)")]
        assert total.value.startswith("=SUM(C")  # a formula over the charge lines: add them up here
        first, last = total.value[len("=SUM(C"):-1].split(":C")
        cells = [book[member].cell(row=r, column=3).value for r in range(int(first), int(last) + 1)]
        assert D(sum(cells)) == expected["total_payable_jpy"], member


def test_pdf_renders_with_japanese_labels_and_chart(ledger, truth, tmp_path):
    from PIL import Image
    from pypdf import PdfReader

    (path,) = export(ledger, "2026-08", "pdf", tmp_path)
    reader = PdfReader(path)
    assert len(reader.pages) == 1 + len(truth["members"])
    first = reader.pages[0]
    text = first.extract_text()
    assert "月次サマリー" in text and "Block summary 2026-08" in text
    assert f"{truth['block']['received_jpy']:,}" in text  # with thousands separators
    assert truth["head"][:16] in text.replace("\n", "")
    (image,) = first.images
    chart = Image.open(io.BytesIO(image.data))
    chart.load()
    assert chart.width > 400 and chart.height > 150
    assert "home-1" in reader.pages[1].extract_text()


def test_single_member_report(ledger, tmp_path):
    docs = build_documents(ledger, "2026-08", member="store")
    assert [d.kind for d in docs] == ["summary", "statement"] and docs[1].member_id == "store"
    with pytest.raises(ValueError, match="no settled period in 2026-09"):
        build_documents(ledger, "2026-09")
    with pytest.raises(ValueError, match="member 'nobody'"):
        build_documents(ledger, "2026-08", member="nobody")


def test_pdf_first_page_rasterises(ledger, tmp_path):
    """Render the first page with poppler (installed by `make system-deps`) and look at pixels."""
    import shutil
    import subprocess

    from PIL import Image

    assert shutil.which("pdftoppm"), "pdftoppm missing: run `make system-deps` (poppler-utils)"
    (path,) = export(ledger, "2026-08", "pdf", tmp_path)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True, capture_output=True, timeout=60)
    (png,) = sorted(tmp_path.glob("page*.png"))
    page = Image.open(png).convert("L")
    histogram = page.histogram()
    dark = sum(histogram[:128]) / (page.width * page.height)
    assert page.width > 400 and page.height > 400
    assert 0.005 < dark < 0.6, f"page looks blank or black (dark share {dark:.3f})"
