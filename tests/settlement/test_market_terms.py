"""Dated market terms: a fee change from a date on, a correction under it, and verify under
the config in force versus the config the ledger was first settled with."""

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.config import ConfigError, load_site
from gridctl.tariffs import market_in_force

ROOT = Path(__file__).resolve().parents[2]
FEE_LINE = 'platform_fee_jpy_per_kwh: "0.50"  # paid by the buyer per P2P kWh'
CHANGE = '  changes: [{effective_from: 2026-08-02, platform_fee_jpy_per_kwh: "0.50"}]\n'


def gridctl(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def site_file(folder: Path, name: str, changes: str = "") -> Path:
    """misono.yaml with fee 0 from the beginning and ``changes`` under ``market``."""
    text = (ROOT / "configs" / "misono.yaml").read_text(encoding="utf-8")
    assert FEE_LINE in text
    text = text.replace(FEE_LINE, 'platform_fee_jpy_per_kwh: "0"\n' + changes.rstrip("\n"))
    path = folder / name
    path.write_text(text, encoding="utf-8")
    if not (folder / "devices").exists():
        (folder / "devices").symlink_to(ROOT / "configs" / "devices")
    return path


def test_market_in_force_follows_the_dated_changes(tmp_path):
    site = load_site(site_file(tmp_path, "new.yaml", CHANGE))
    # 2026-08-01T23:30 JST is still the 1st; 2026-08-02T00:00 JST is the 2nd
    before = market_in_force(site, dt.datetime(2026, 8, 1, 14, 30, tzinfo=dt.timezone.utc))
    after = market_in_force(site, dt.datetime(2026, 8, 1, 15, 0, tzinfo=dt.timezone.utc))
    assert (before.platform_fee_jpy_per_kwh, before.effective_from) == (D(0), None)
    assert (after.platform_fee_jpy_per_kwh, after.effective_from) == (D("0.50"), dt.date(2026, 8, 2))
    assert after.mechanism == before.mechanism == "sdr"


def test_changes_out_of_order_are_one_clear_error(tmp_path):
    bad = ('  changes: [{effective_from: 2026-09-01, mechanism: mmr},\n'
           '            {effective_from: 2026-08-01, platform_fee_jpy_per_kwh: "1"}]\n')
    with pytest.raises(ConfigError) as error:
        load_site(site_file(tmp_path, "bad.yaml", bad))
    assert "market.changes" in str(error.value.issues[0])
    assert "2026-08-01 does not come after 2026-09-01" in str(error.value.issues[0])


def test_correction_after_a_fee_change_verifies_under_the_terms_in_force(tmp_path):
    old, new = site_file(tmp_path, "old.yaml"), site_file(tmp_path, "new.yaml", CHANGE)
    month, ledger = tmp_path / "aug.csv", tmp_path / "ledger.sqlite"
    assert gridctl("settle", "sample-readings", "-c", old, "--month", "2026-08", "--out", month)[0] == 0
    rows = month.read_text().splitlines()
    two_days = [r for r in rows if r[:19] <= "2026-08-02T15:00:00" or not r[0].isdigit()]
    (tmp_path / "two.csv").write_text("\n".join(two_days) + "\n")
    code, out, err = gridctl("settle", "run", "-c", old, "--ledger", ledger, "--readings", tmp_path / "two.csv")
    assert code == 0, err
    # the fee of 0.50 from 2026-08-02 on: the 2nd is settled again from its stored readings
    code, out, err = gridctl("settle", "run", "-c", new, "--ledger", ledger,
                             "--from", "2026-08-02T00:00", "--to", "2026-08-03T00:00")
    assert code == 0, err
    assert "settled 48 periods (new 0, unchanged 0, corrected 48)" in out
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", new)
    assert code == 0, err
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", old)
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: {ledger}: period 2026-08-01T15:00:00+00:00 revision 2: settled with sdr, fee 0.50 "
        "JPY/kWh (market terms from 2026-08-02); the config has sdr, fee 0 JPY/kWh in force "
        "(market terms from the beginning)"
    ]
