"""``gridctl settle export``: one row per member per period, exact, at the current revision."""

import csv
import dataclasses
import datetime as dt
import io
import json
import sqlite3
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.ledger import Ledger
from gridctl.settlement.export import ExportValueError, csv_cells, period_rows

ROOT = Path(__file__).resolve().parents[2]
SITE = str(ROOT / "configs" / "misono.yaml")
MEMBERS = 7
PERIODS = 48  # 2026-08-01 JST
JST = ZoneInfo("Asia/Tokyo")
#: The columns the issue asks for, at least.
REQUIRED = (
    "period_start_jst", "member_id", "revision", "grid_import_kwh", "grid_export_kwh", "p2p_bought_kwh",
    "p2p_sold_kwh", "import_price_jpy_per_kwh", "export_price_jpy_per_kwh", "p2p_price_jpy_per_kwh",
    "p2p_paid_jpy", "p2p_received_jpy", "fee_jpy", "bill_jpy", "grid_only_jpy", "import_tariff",
    "export_tariff", "mechanism", "lambda_b_prime_jpy_per_kwh", "lambda_s_prime_jpy_per_kwh", "supply_kwh",
    "demand_kwh", "flags",
)
CORRECTED = ("2026-08-01T11:30:00+00:00", "2026-08-01T12:00:00+00:00")


def gridctl(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A day of Misono settled, then the mall's 21:00 JST grid reading corrected (2 periods at revision 2)."""
    folder = tmp_path_factory.mktemp("export")
    readings, path = folder / "aug.csv", folder / "ledger.sqlite"
    assert gridctl("settle", "sample-readings", "-c", SITE, "--month", "2026-08", "--out", readings)[0] == 0
    day = ("--from", "2026-08-01T00:00", "--to", "2026-08-02T00:00")
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", path, "--readings", readings, *day)
    assert code == 0 and f"settled {PERIODS} periods" in out, err
    lines = readings.read_text().splitlines()
    stamp = "2026-08-01T12:00:00Z,mall,grid,"
    (index,) = [i for i, line in enumerate(lines) if line.startswith(stamp)]
    imp, exp = lines[index][len(stamp):].split(",")
    lines[index] = f"{stamp}{float(imp) + 0.5:.3f},{exp}"
    readings.write_text("\n".join(lines) + "\n")
    code, out, err = gridctl("settle", "run", "-c", SITE, "--ledger", path, "--readings", readings, *day)
    assert code == 0 and "corrected 2)" in out, err
    return path


def expected_rows(path, member=None):
    """What the ledger holds, column by column (written out here, independently of the exporter)."""
    with Ledger(path, read_only=True) as store:
        settled = store.settlements()
    rows = []
    for s, revision in settled:
        for m in s.members:
            if member and m.member_id != member:
                continue
            rows.append({
                "period_start_jst": s.start_utc.astimezone(JST), "member_id": m.member_id, "revision": revision,
                "role": m.role, "grid_import_kwh": m.grid_import_kwh, "grid_export_kwh": m.grid_export_kwh,
                "p2p_bought_kwh": m.p2p_bought_kwh, "p2p_sold_kwh": m.p2p_sold_kwh,
                "import_price_jpy_per_kwh": m.import_price_jpy_per_kwh,
                "export_price_jpy_per_kwh": m.export_price_jpy_per_kwh,
                "p2p_price_jpy_per_kwh": s.price_jpy_per_kwh,
                "p2p_seller_price_jpy_per_kwh": s.seller_price_jpy_per_kwh, "fee_jpy_per_kwh": s.fee_jpy_per_kwh,
                "grid_import_jpy": m.grid_import_jpy, "grid_export_jpy": m.grid_export_jpy,
                "p2p_paid_jpy": m.p2p_paid_jpy, "p2p_received_jpy": m.p2p_received_jpy, "fee_jpy": m.fee_jpy,
                "wheeled_sent_kwh": m.wheeled_sent_kwh, "wheeled_received_kwh": m.wheeled_received_kwh,
                "wheeling_paid_jpy": m.wheeling_paid_jpy, "wheeling_received_jpy": m.wheeling_received_jpy,
                "platform_credit_jpy": m.platform_credit_jpy,
                "bill_jpy": m.bill_jpy, "grid_only_jpy": m.grid_only_jpy, "import_tariff": m.import_tariff,
                "export_tariff": m.export_tariff, "mechanism": s.mechanism,
                "lambda_b_prime_jpy_per_kwh": s.buy_limit_jpy_per_kwh,
                "lambda_s_prime_jpy_per_kwh": s.sell_limit_jpy_per_kwh,
                "supply_kwh": s.supply_kwh, "demand_kwh": s.demand_kwh, "market_terms_from": s.market_terms_from,
                "flags": list(s.flags),
            })
    return rows


def parse_cell(name, cell):
    if name == "period_start_jst":
        assert cell.endswith("+09:00"), cell
        return dt.datetime.fromisoformat(cell)
    if name == "revision":
        return int(cell)
    if name == "flags":
        return cell.split(";") if cell else []
    if name.endswith(("_kwh", "_jpy")):
        assert "E" not in cell and cell.count(".") == 1, (name, cell)  # fixed point, never 0E-6
        return D(cell)
    return cell


def test_csv_has_every_column_equal_to_the_ledger(ledger, tmp_path):
    out = tmp_path / "day.csv"
    code, stdout, err = gridctl("settle", "export", "--ledger", ledger, "--from", "2026-08-01",
                                "--to", "2026-08-02", "--out", out)
    assert code == 0, err
    assert stdout.startswith(f"{out}: {PERIODS * MEMBERS} rows, {PERIODS} periods")
    with out.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    header, body = table[0], table[1:]
    assert set(REQUIRED) <= set(header)
    assert len(body) == PERIODS * MEMBERS
    got = [{name: parse_cell(name, cell) for name, cell in zip(header, row)} for row in body]
    expected = expected_rows(ledger)
    assert set(expected[0]) == set(header)
    assert got == expected
    assert {r["revision"] for r in got} == {1, 2}
    revised = {r["period_start_jst"].astimezone(dt.timezone.utc).isoformat() for r in got if r["revision"] == 2}
    assert revised == set(CORRECTED)


def test_a_corrected_period_exports_its_latest_revision(ledger, tmp_path):
    out = tmp_path / "mall.csv"
    code, _, err = gridctl("settle", "export", "--ledger", ledger, "--from", "2026-08-01T20:30",
                           "--to", "2026-08-01T21:30", "--member", "mall", "--out", out)
    assert code == 0, err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["period_start_jst"], r["revision"]) for r in rows] == [
        ("2026-08-01T20:30:00+09:00", "2"), ("2026-08-01T21:00:00+09:00", "2")]
    with Ledger(ledger, read_only=True) as store:
        first = store.readings(dt.datetime.fromisoformat(CORRECTED[0]), 1).channel("mall", "grid").deltas_kwh()[0]
    assert D(rows[0]["grid_import_kwh"]) == first + D("0.5")  # the corrected reading, not revision 1


def test_parquet_types_are_exact_and_equal_to_the_ledger(ledger, tmp_path):
    out = tmp_path / "day.parquet"
    code, _, err = gridctl("settle", "export", "--ledger", ledger, "--from", "2026-08-01T00:00+09:00",
                           "--to", "2026-08-02T00:00+09:00", "--format", "parquet", "--out", out)
    assert code == 0, err
    table = pq.read_table(out)
    schema = table.schema
    assert schema.field("period_start_jst").type == pa.timestamp("ms", tz="Asia/Tokyo")
    assert schema.field("member_id").type == pa.string() and schema.field("mechanism").type == pa.string()
    assert schema.field("revision").type == pa.int32()
    for name in ("grid_import_kwh", "p2p_sold_kwh", "supply_kwh", "demand_kwh"):
        assert schema.field(name).type == pa.decimal128(18, 6), name
    for name in ("bill_jpy", "grid_only_jpy", "fee_jpy", "p2p_price_jpy_per_kwh", "lambda_s_prime_jpy_per_kwh"):
        assert schema.field(name).type == pa.decimal128(18, 4), name
    assert schema.field("flags").type == pa.list_(pa.string())
    with Ledger(ledger, read_only=True) as store:
        assert schema.metadata[b"gridctl.ledger_head_sha256"].decode() == store.head_hash()
    assert table.to_pylist() == expected_rows(ledger)


def test_csv_to_stdout_for_one_member(ledger):
    code, stdout, err = gridctl("settle", "export", "--ledger", ledger, "--from", "2026-08-01",
                                "--to", "2026-08-01T02:00", "--member", "home-3", "--out", "-")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [r["member_id"] for r in rows] == ["home-3"] * 4
    assert [D(r["bill_jpy"]) for r in rows] == [r["bill_jpy"] for r in expected_rows(ledger, "home-3")[:4]]


def test_a_ledger_the_daemon_is_writing_can_be_exported(ledger, tmp_path):
    from gridctl.ledger.lock import hold_ledger

    copy = tmp_path / "live.sqlite"
    source, target = sqlite3.connect(ledger), sqlite3.connect(copy)
    source.backup(target)
    target.close()
    with Ledger(copy) as store:
        (last, _), = store.settlements(dt.datetime(2026, 8, 1, 14, 30, tzinfo=dt.timezone.utc))
        readings = store.readings(last.start_utc, 1)
    later = dataclasses.replace(readings, start_utc=last.start_utc + dt.timedelta(minutes=30))
    moved = dataclasses.replace(last, start_utc=later.start_utc, readings_sha256=later.sha256())
    with hold_ledger(copy, "gridctl run"), Ledger(copy, "misono") as writer, writer.batch():
        writer.record(moved, later)  # a period being written, not yet committed
        out = tmp_path / "live.csv"
        code, _, err = gridctl("settle", "export", "--ledger", copy, "--from", "2026-08-01",
                               "--to", "2026-08-03", "--out", out)
        assert code == 0, err
        assert len(out.read_text().splitlines()) == 1 + PERIODS * MEMBERS  # what is committed


@pytest.mark.parametrize("args, expected", [
    (["--from", "2026-08-02", "--to", "2026-08-01"],
     "error: --from must be before --to, not [2026-08-02T00:00:00+09:00, 2026-08-01T00:00:00+09:00)\n"),
    (["--from", "2026-08-01", "--to", "2026-08-01"], "error: --from must be before --to"),
    (["--from", "2026-08-01", "--to", "2026-08-02", "--format", "xlsx"],
     "error: --format 'xlsx' is not one of csv, parquet\n"),
    (["--from", "1 Aug", "--to", "2026-08-02"], "error: --from '1 Aug' is not an ISO 8601 time\n"),
    (["--from", "2026-09-01", "--to", "2026-10-01"],
     "no settled periods in [2026-09-01T00:00:00+09:00, 2026-10-01T00:00:00+09:00)\n"),
    (["--from", "2026-08-01", "--to", "2026-08-02", "--member", "home-9"], "no settled periods for member 'home-9'"),
    (["--from", "2026-08-01", "--to", "2026-08-02", "--format", "parquet", "--out", "-"],
     "error: --out - (stdout) takes CSV only"),
])
def test_bad_input_is_one_line_and_exit_2(ledger, tmp_path, args, expected):
    out = tmp_path / "never.csv"
    code, stdout, err = gridctl("settle", "export", "--ledger", ledger, "--out", out, *args)
    assert code == 2
    assert expected in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_no_such_ledger_and_a_file_that_is_no_ledger_exit_2(tmp_path):
    code, _, err = gridctl("settle", "export", "--ledger", tmp_path / "none.sqlite", "--from", "2026-08-01",
                           "--to", "2026-08-02")
    assert code == 2 and err == f"error: {tmp_path / 'none.sqlite'}: no such ledger\n"
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    code, _, err = gridctl("settle", "export", "--ledger", junk, "--from", "2026-08-01", "--to", "2026-08-02")
    assert code == 2 and err.startswith(f"error: {junk}") and err.count("\n") == 1, err


def test_unwritable_output_and_unreadable_entry_exit_1(ledger, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = gridctl("settle", "export", "--ledger", ledger, "--from", "2026-08-01", "--to", "2026-08-02",
                           "--out", blocker / "day.csv")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    damaged = tmp_path / "damaged.sqlite"
    source, target = sqlite3.connect(ledger), sqlite3.connect(damaged)
    source.backup(target)
    target.execute("DROP TRIGGER entries_append_only_u")
    body = json.loads(target.execute("SELECT body FROM entries WHERE seq = 2").fetchone()[0])
    del body["bill_jpy"]
    target.execute("UPDATE entries SET body = ? WHERE seq = 2", (json.dumps(body),))
    target.commit()
    target.close()
    out = tmp_path / "damaged.csv"
    code, _, err = gridctl("settle", "export", "--ledger", damaged, "--from", "2026-08-01", "--to", "2026-08-02",
                           "--out", out)
    assert code == 1 and "cannot be exported" in err and "settle verify" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_periods_recorded_before_the_band_was_kept_export_empty_cells(ledger):
    with Ledger(ledger, read_only=True) as store:
        (settlement, revision), = store.settlements(dt.datetime(2026, 7, 31, 15, 0, tzinfo=dt.timezone.utc),
                                                    dt.datetime(2026, 7, 31, 15, 30, tzinfo=dt.timezone.utc))
    old = dataclasses.replace(settlement, buy_limit_jpy_per_kwh=None, sell_limit_jpy_per_kwh=None,
                              supply_kwh=None, demand_kwh=None)
    (row, *_) = period_rows(old, revision)
    cells = {f.name: c for f, c in zip(dataclasses.fields(row), csv_cells(row))}
    assert [cells[n] for n in ("lambda_b_prime_jpy_per_kwh", "lambda_s_prime_jpy_per_kwh", "supply_kwh",
                               "demand_kwh")] == ["", "", "", ""]
    assert cells["grid_import_kwh"] == f"{settlement.members[0].grid_import_kwh:.6f}"


def test_a_value_finer_than_its_column_is_refused_not_rounded(ledger):
    with Ledger(ledger, read_only=True) as store:
        settlement, revision = store.settlements()[0]
    line = dataclasses.replace(settlement.members[0], bill_jpy=D("1.00005"))
    with pytest.raises(ExportValueError, match=r"bill_jpy = 1.00005 has more than 4 decimal places"):
        period_rows(dataclasses.replace(settlement, members=(line,)), revision)
