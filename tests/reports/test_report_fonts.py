"""The PDF carries its Japanese font and its text renders in poppler; charts use the same font locally.

poppler (`pdffonts`, `pdftoppm`) stands in for a clerk's viewer without Acrobat's Asian font pack:
a non-embedded CID font renders there as blank table cells.
"""

import shutil
import subprocess
import warnings
from importlib import metadata
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from pypdf import PdfWriter
from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.config import load_site
from gridctl.ledger import Ledger
from gridctl.reports import build_documents, export, fonts
from gridctl.reports.render import chart_png
from gridctl.settlement import settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
DPI = 100
PX_PER_MM = DPI / 25.4
MARGIN_MM = 12  # the PDF's left and right page margins
COLUMNS_MM = (120, 48, 18)  # the line tables' column widths, left to right: label, value, unit


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """Two days of August 2026 (96 periods) settled into a fresh ledger."""
    site = load_site(SITE_FILE)
    periods = periods_from_counters(parse_readings(format_readings(sample_month(site, 2026, 8))))[:96]
    path = tmp_path_factory.mktemp("fonts") / "ledger.sqlite"
    store = Ledger(path, "misono")
    store.record_many([(settle_period(site, p), p) for p in periods])
    yield store
    store.close()


@pytest.fixture(scope="module")
def pdf(ledger, tmp_path_factory):
    (path,) = export(ledger, "2026-08", "pdf", tmp_path_factory.mktemp("pdf"))
    return path


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    assert found, f"{tool} missing: run `make system-deps` (poppler-utils)"
    return found


def _render_first_page(pdf_path: Path, stem: Path) -> Image.Image:
    subprocess.run([_poppler("pdftoppm"), "-png", "-r", str(DPI), "-f", "1", "-l", "1", str(pdf_path), str(stem)],
                   check=True, capture_output=True, timeout=60)
    (png,) = sorted(stem.parent.glob(f"{stem.name}*.png"))
    return Image.open(png).convert("L")


def _ink(image: Image.Image) -> int:
    """Number of set pixels in a thresholded (0/255) image."""
    return image.histogram()[255]


def test_font_file_is_found_through_the_installed_distribution():
    path = fonts.font_path()
    assert path.name == "ipaexg.ttf" and path.stat().st_size > 1_000_000
    assert (path.parent / "IPA_Font_License_Agreement_v1.0.txt").is_file()


def test_missing_font_is_a_one_line_error(monkeypatch, ledger, tmp_path):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(fonts.metadata, "distribution", absent)
    with pytest.raises(FileNotFoundError, match="install the 'matplotlib-fontja' package"):
        fonts.font_path()
    fonts.pdf_font.cache_clear()  # make the report look the font up again
    try:
        result = CliRunner().invoke(app, ["settle", "report", "--ledger", str(ledger.path), "--month", "2026-08",
                                          "--format", "pdf", "--out", str(tmp_path)])
    finally:
        fonts.pdf_font.cache_clear()
    assert result.exit_code == 1, result.output
    assert "matplotlib-fontja" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_every_pdf_font_is_embedded(pdf):
    listing = subprocess.run([_poppler("pdffonts"), str(pdf)], check=True, capture_output=True, text=True,
                             timeout=60).stdout.splitlines()
    rows = listing[2:]  # after the header and the dashes
    assert rows, listing
    for row in rows:
        # columns from the right: emb sub uni object-number generation (the type may contain spaces)
        emb, sub, uni = row.split()[-5:-2]
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
    assert all("IPAexGothic" in row for row in rows), rows


def test_table_text_renders_in_every_column(pdf, tmp_path):
    """Render page 1 as is and with its text removed: the difference is the text poppler drew.

    A PDF whose font poppler cannot show (the old non-embedded CID font) renders the same with
    and without text, so the difference is empty and this fails.
    """
    bare = tmp_path / "bare.pdf"
    writer = PdfWriter(clone_from=pdf)
    writer.remove_text()
    writer.write(bare)
    full, textless = _render_first_page(pdf, tmp_path / "full"), _render_first_page(bare, tmp_path / "bare")
    assert full.size == textless.size and full.width > 800
    text = ImageChops.difference(full, textless).point(lambda v: 255 if v > 64 else 0)
    # the table: below the title, above the chart (about the top 40 % of an A4 page)
    band = text.crop((0, int(0.08 * text.height), text.width, int(0.40 * text.height)))
    share = _ink(band) / (band.width * band.height)
    assert share > 0.02, f"table text covers {share:.4f} of the table area: blank cells?"
    left_mm = MARGIN_MM
    for index, width_mm in enumerate(COLUMNS_MM):
        column = band.crop((int(left_mm * PX_PER_MM) + 2, 0, int((left_mm + width_mm) * PX_PER_MM) - 2, band.height))
        assert _ink(column) > 300, f"column {index} of the table shows no text"
        left_mm += width_mm
    beyond = band.crop((int(left_mm * PX_PER_MM) + 2, 0, band.width, band.height))
    assert _ink(beyond) == 0, "table text runs past the right edge of the table"


def test_chart_uses_the_japanese_font_without_touching_global_settings(ledger):
    import matplotlib

    (summary,) = build_documents(ledger, "2026-08", member="store")[:1]
    family_before = list(matplotlib.rcParams["font.family"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = chart_png(summary)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing  # DejaVu Sans, the default, has no Japanese glyphs and warns
    assert png.startswith(b"\x89PNG")
    assert list(matplotlib.rcParams["font.family"]) == family_before
