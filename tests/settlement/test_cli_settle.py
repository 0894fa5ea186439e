"""``gridctl settle``: a month of readings settles, verifies, exports and reaches a real InfluxDB."""

import json
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridctl.cli import app

ROOT = Path(__file__).resolve().parents[2]
SITE = str(ROOT / "configs" / "misono.yaml")
MEMBERS = 7


def gridctl(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """A month of sample readings settled into a fresh ledger through the CLI."""
    folder = tmp_path_factory.mktemp("settle")
    readings, ledger = folder / "aug.csv", folder / "ledger.sqlite"
    code, out, err = gridctl("settle", "sample-readings", "-c", SITE, "--month", "2026-08", "--out", readings)
    assert code == 0, err
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings)
    assert code == 0, err
    assert "settled 1488 periods (new 1488, unchanged 0, corrected 0)" in out
    return folder, readings, ledger


@pytest.mark.slow
@pytest.mark.integration
def test_month_settles_verifies_exports_and_reaches_influxdb(month, influxdb, influx_database):
    folder, readings, ledger = month
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings)
    assert code == 0 and "unchanged 1488" in out
    code, out, err = gridctl("settle", "verify", "--ledger", ledger)
    assert code == 0, err
    assert "ok: 11904 entries, 1488 periods" in out
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", SITE)
    assert code == 0, err  # every period settles again to exactly what the ledger holds
    for fmt, expected in (("csv", 1 + MEMBERS), ("xlsx", 1), ("pdf", 1)):
        code, out, err = gridctl("settle", "report", "--ledger", ledger, "--month", "2026-08",
                                 "--format", fmt, "--out", folder / fmt)
        assert code == 0, err
        assert len(out.split()) == expected and all(Path(p).stat().st_size > 0 for p in out.split())
    code, out, err = gridctl("settle", "push", "--ledger", ledger, "--url", influxdb.url, "--database", influx_database)
    assert code == 0, err
    rows = influxdb.rows("SELECT COUNT(price_jpy_per_kwh) FROM settlement_period", influx_database)
    assert rows[0]["count"] == 1488
    rows = influxdb.rows("SELECT COUNT(bill_jpy) FROM settlement_member", influx_database)
    assert rows[0]["count"] == 1488 * MEMBERS


def test_push_while_influxdb_is_down_keeps_the_outbox(month, tmp_path):
    _, _, ledger = month
    code, out, err = gridctl("settle", "push", "--ledger", ledger, "--url", "http://127.0.0.1:9", "--database", "x")
    assert code == 1
    assert err.startswith("error: InfluxDB is not accepting writes") and err.count("\n") == 1


def test_resettle_stored_readings_is_idempotent(month):
    _, _, ledger = month
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger,
                             "--from", "2026-08-02T00:00", "--to", "2026-08-03T00:00")
    assert code == 0, err
    assert "settled 48 periods (new 0, unchanged 48, corrected 0)" in out


def test_verify_names_the_first_tampered_entry(month, tmp_path):
    _, _, ledger = month
    copy = tmp_path / "tampered.sqlite"
    source = sqlite3.connect(ledger)
    target = sqlite3.connect(copy)
    source.backup(target)
    target.execute("DROP TRIGGER entries_append_only_u")
    body = json.loads(target.execute("SELECT body FROM entries WHERE seq = 42").fetchone()[0])
    body["grid_import_kwh"] = "0.001"
    target.execute("UPDATE entries SET body = ? WHERE seq = 42", (json.dumps(body),))
    target.commit()
    target.close()
    code, out, err = gridctl("settle", "verify", "--ledger", copy)
    assert code == 1
    assert "entry 42 " in err and "hash mismatch" in err and err.count("\n") == 1


def test_bad_readings_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "timestamp,member_id,channel,import_kwh,export_kwh\n"
        "2026-08-01T00:00:00+09:00,home-1,grid,1,2\n"
        "2026-08-01T00:10:00+09:00,home-1,grid,1,2\n"
    )
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", tmp_path / "l.sqlite", "--readings", bad)
    assert code == 2
    assert err == f"error: {bad}:3: timestamp '2026-08-01T00:10:00+09:00' is not on a 30-minute boundary\n"
    bad.write_text("timestamp,member_id,channel,import_kwh,export_kwh\n2026-08-01T00:00:00Z,home-1,grid,abc,2\n")
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", tmp_path / "l.sqlite", "--readings", bad)
    assert code == 2 and "import_kwh 'abc' is not a number" in err


def test_usage_errors_exit_2(tmp_path):
    assert gridctl("settle", "verify", "--ledger", tmp_path / "none.sqlite")[0] == 2
    code, _, err = gridctl("settle", "run", "-c", SITE, "--ledger", tmp_path / "l.sqlite")
    assert code == 2 and "give --readings FILE" in err
    bad_site = tmp_path / "site.yaml"
    bad_site.write_text("site: {id: x}\n")
    code, _, err = gridctl("settle", "run", "-c", bad_site, "--readings", tmp_path / "r.csv")
    assert code == 2 and err.startswith(f"error: {bad_site}")


def test_corrected_reading_appends_reversals_and_verifies(month, tmp_path):
    from gridctl.ledger import Ledger

    _, readings, ledger = month
    copy = tmp_path / "ledger.sqlite"
    source, target = sqlite3.connect(ledger), sqlite3.connect(copy)
    source.backup(target)
    target.close()
    # a corrected reading of the mall's grid meter at 21:00 JST on 2026-08-10 moves 0.5 kWh
    # from the period after it to the period before it (the mall's time-of-use tariff has no
    # tiers, so no other period changes)
    lines = readings.read_text().splitlines()
    stamp = "2026-08-10T12:00:00Z,mall,grid,"
    (index,) = [i for i, line in enumerate(lines) if line.startswith(stamp)]
    imp, exp = lines[index][len(stamp):].split(",")
    lines[index] = f"{stamp}{float(imp) + 0.5:.3f},{exp}"
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("\n".join(lines) + "\n")
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", copy, "--readings", fixed)
    assert code == 0, err
    assert "(new 0, unchanged 1486, corrected 2), pending 0, flagged 0" in out
    with Ledger(copy) as store:
        current = {s.start_utc.isoformat(): (s, r) for s, r in store.settlements()}
        before, rev_before = current["2026-08-10T11:30:00+00:00"]
        after, rev_after = current["2026-08-10T12:00:00+00:00"]
        assert rev_before == rev_after == 2
        original = store.readings(before.start_utc, 1)
        old_import = original.channel("mall", "grid").deltas_kwh()[0]
        assert before.member("mall").grid_import_kwh == old_import + D("0.5")
    code, out, err = gridctl("settle", "verify", "--ledger", copy)
    assert code == 0 and f"ok: {11904 + 2 * 2 * (1 + MEMBERS)} entries, 1488 periods" in out


def test_opening_balance_for_a_ledger_that_starts_mid_month(month, tmp_path):
    _, readings, _ = month
    ledger = tmp_path / "ledger.sqlite"
    code, out, err = gridctl("settle", "opening", "-c", SITE, "--ledger", ledger, "--month", "2026-08",
                             "--import", "home-1=119.5", "--import", "home-2=299.7", "--source", "bill 2026-08")
    assert code == 0, err
    assert out == f"{ledger}: opening balance of 2026-08 recorded: home-1 119.5 kWh, home-2 299.7 kWh\n"
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings,
                             "--from", "2026-08-17T00:00", "--to", "2026-08-18T00:00")
    assert code == 0 and "settled 48 periods (new 48," in out, err
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", SITE)
    assert code == 0 and f"ok: {2 + 48 * (1 + MEMBERS)} entries, 48 periods" in out, err
    from gridctl.ledger import Ledger

    with Ledger(ledger) as store:
        first = store.settlements()[0][0]
    assert first.member("home-1").import_price_jpy_per_kwh == D("32.08")  # 119.5 kWh: first tier
    assert first.member("home-2").import_price_jpy_per_kwh == D("38.68")  # 299.7 kWh: second tier
    # once, and only before the month's first period
    code, _, err = gridctl("settle", "opening", "-c", SITE, "--ledger", ledger, "--month", "2026-08",
                           "--import", "home-3=1")
    assert code == 1 and "already has an opening balance" in err and err.count("\n") == 1
    for bad, expected in ((["--import", "home-1"], "is not MEMBER=KWH"), (["--import", "home-9=1"], "unknown member"),
                          (["--import", "home-1=-3"], "non-negative"), (["--month", "August"], "is not YYYY-MM")):
        args = {"--month": "2026-09", "--import": "home-1=1"}
        args.update(dict(zip(bad[::2], bad[1::2])))
        code, _, err = gridctl("settle", "opening", "-c", SITE, "--ledger", ledger, *[x for kv in args.items() for x in kv])
        assert code == 2 and expected in err, (bad, err)
