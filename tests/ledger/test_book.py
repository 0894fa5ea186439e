"""One settlement entry point: the month-to-date import folded from the ledger, opening balances.

Hand-checked prices are Misono's TEPCO Juryo-Dento B in August 2026: tiers 29.80 / 36.40 /
40.49 JPY/kWh below 120 / 300 kWh and above, plus the renewable surcharge 3.98 and the August
fuel cost adjustment -1.70, so 32.08 / 38.68 / 42.77 JPY/kWh.
"""

import datetime as dt
import functools
import json
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.daemon.lifecycle.build import LedgerPeriods
from gridctl.ledger import Ledger, LedgerError, SettlementBook, month_bounds_utc, settle_and_record, verify_ledger
from gridctl.ledger.batch import settle_into_ledger
from gridctl.ledger.store import GENESIS_HASH, entry_hash
from gridctl.settlement import PeriodReadings
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month
from gridctl.settlement.timing import expected_channels
from sim.runner.settler import Settler as _Settler

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
UTC = dt.timezone.utc
AUG_17 = dt.datetime(2026, 8, 16, 15, tzinfo=UTC)  # 2026-08-17 00:00 JST: a ledger starts mid-month
PERIOD = dt.timedelta(minutes=30)
CLOCK = dt.datetime(2026, 9, 1, tzinfo=UTC)
TIER_1, TIER_2, TIER_3 = D("32.08"), D("38.68"), D("42.77")


@functools.lru_cache(maxsize=1)
def misono():
    return load_site(SITE_FILE)


@functools.lru_cache(maxsize=1)
def august_boundaries():
    return parse_readings(format_readings(sample_month(misono(), 2026, 8)))


def sample_from_aug_17(days: int) -> list[PeriodReadings]:
    return periods_from_counters(august_boundaries(), AUG_17, AUG_17 + dt.timedelta(days=days))


def readings(start: dt.datetime, **import_kwh: str) -> PeriodReadings:
    """A complete period in which only the named members import from the grid [kWh]."""
    deltas = {key: (D(0), D(0)) for key in expected_channels(misono())}
    for member, kwh in import_kwh.items():
        deltas[(member.replace("_", "-"), "grid")] = (D(kwh), D(0))
    return PeriodReadings.from_deltas(start, deltas)


def at(k: int) -> dt.datetime:
    return AUG_17 + k * PERIOD


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite", "misono", clock=lambda: CLOCK) as store:
        yield store


def test_month_bounds_are_site_local():
    start, end = month_bounds_utc(misono(), at(0))
    assert (start, end) == (dt.datetime(2026, 7, 31, 15, tzinfo=UTC), dt.datetime(2026, 8, 31, 15, tzinfo=UTC))
    # 2026-12-31 23:30 JST is still December; the next month is in the next year
    assert month_bounds_utc(misono(), dt.datetime(2026, 12, 31, 14, 30, tzinfo=UTC))[1] == dt.datetime(
        2026, 12, 31, 15, tzinfo=UTC)


def test_opening_balance_starts_the_tiers_where_the_bill_is(ledger):
    book = SettlementBook(misono(), ledger)
    book.record_opening_month_import(at(0), {"home-1": D("119.5"), "home-2": D("299.7")}, "bill 2026-08")
    lines = [book.settle(readings(at(k), home_1="0.3", home_2="0.4"))[0] for k in range(3)]
    home_1 = [(s.member("home-1").import_price_jpy_per_kwh, s.member("home-1").grid_import_jpy) for s in lines]
    home_2 = [(s.member("home-2").import_price_jpy_per_kwh, s.member("home-2").grid_import_jpy) for s in lines]
    # home-1: 119.5, 119.8 kWh before the period -> first tier; 120.1 -> second
    assert home_1 == [(TIER_1, D("9.6240")), (TIER_1, D("9.6240")), (TIER_2, D("11.6040"))]
    # home-2: 299.7 -> second tier; 300.1, 300.5 -> third
    assert home_2 == [(TIER_2, D("15.4720")), (TIER_3, D("17.1080")), (TIER_3, D("17.1080"))]
    assert lines[2].member("home-3").import_price_jpy_per_kwh == TIER_1  # no opening: zero
    assert book.month_to_date_import_kwh(at(3)) == {
        "home-1": D("120.4"), "home-2": D("300.9"), **{m: D(0) for m in ("home-3", "home-4", "home-5", "store", "mall")}}
    report = verify_ledger(ledger, misono())
    assert report.ok, report.problem
    assert report.entries_checked == 2 + 3 * (1 + len(misono().nodes))  # the opening entries are chained


def test_a_mid_month_ledger_without_opening_balance_verifies(ledger):
    book = SettlementBook(misono(), ledger)
    settled = [book.settle(r)[0] for r in sample_from_aug_17(2)]
    assert ledger.openings() == {}
    assert {s.member("home-1").import_price_jpy_per_kwh for s in settled} == {TIER_1}
    report = verify_ledger(ledger, misono())
    assert report.ok and report.periods_checked == 96, report.problem


def test_opening_balance_is_refused_once_the_month_has_settlements(ledger):
    book = SettlementBook(misono(), ledger)
    book.settle(readings(at(0), home_1="0.3"))
    with pytest.raises(LedgerError, match="already has settlements"):
        book.record_opening_month_import(at(0), {"home-1": D("100")})
    # another month is free; the same month only once
    september = dt.datetime(2026, 9, 10, tzinfo=UTC)
    book.record_opening_month_import(september, {"home-1": D("50")})
    with pytest.raises(LedgerError, match="already has an opening balance"):
        book.record_opening_month_import(september, {"home-2": D("1")})
    with pytest.raises(ValueError, match="unknown member"):
        book.record_opening_month_import(dt.datetime(2026, 10, 10, tzinfo=UTC), {"home-9": D("1")})
    with pytest.raises(ValueError, match="non-negative"):
        book.record_opening_month_import(dt.datetime(2026, 10, 10, tzinfo=UTC), {"home-1": D("-1")})
    assert ledger.openings() == {"2026-08-31T15:00:00+00:00": {"home-1": D("50")}}
    assert verify_ledger(ledger, misono()).ok


def _same_ledger(path: Path) -> tuple[list, list, list]:
    with Ledger(path) as store:
        entries = [(e.seq, e.period_start_utc, e.revision, e.kind, e.member_id, e.sign, e.body_text, e.prev_hash, e.hash)
                   for e in store.entries()]
        outbox = [line for _, line in store.outbox_peek(100_000)]
        rows = sorted(store.readings_rows())
    return entries, outbox, rows


class _Meters:
    """The simulator's Bridge as the settler sees it: node ids and the counters of a 'state'."""

    def __init__(self, node_ids):
        self.node_ids = node_ids

    def counters(self, state):
        return state  # here a state is the counters at a boundary


def test_daemon_settle_run_and_simulator_write_identical_ledgers(tmp_path):
    site, days = misono(), 3
    periods = sample_from_aug_17(days)
    nodes = tuple(n.id for n in site.nodes)
    prior = [119.0 if n == "home-1" else 299.0 if n == "home-2" else 0.0 for n in nodes]
    opening = {n: D(f"{v:.6f}") for n, v in zip(nodes, prior)}
    source = "simulation: max(load - pv, 0) of the profiles before the start"

    with Ledger(tmp_path / "daemon.sqlite", "misono", clock=lambda: CLOCK) as store:
        sink = LedgerPeriods(site, store)
        sink.book.record_opening_month_import(AUG_17, opening, source)
        for r in periods:
            sink.settle(r)
        assert sink.last.start_utc == periods[-1].start_utc and sink.is_settled(periods[-1].start_utc)

    csv = tmp_path / "readings.csv"
    csv.write_text(format_readings(
        (t, m, c, i, e) for t, counters in august_boundaries().items() if AUG_17 <= t <= AUG_17 + dt.timedelta(days=days)
        for (m, c), (i, e) in counters.items()))
    with Ledger(tmp_path / "run.sqlite", "misono", clock=lambda: CLOCK) as store:
        SettlementBook(site, store).record_opening_month_import(AUG_17, opening, source)
        summary = settle_into_ledger(site, store, csv, now_utc=CLOCK)
        assert summary.outcomes["new"] == len(periods) == 48 * days

    boundaries = august_boundaries()
    settler = _Settler(site, _Meters(nodes), boundaries[AUG_17], AUG_17, prior,
                       ledger_path=tmp_path / "sim.sqlite")
    for r in periods:
        settler.maybe_settle(r.start_utc + PERIOD / 2, boundaries[r.end_utc])  # mid-period: nothing
        settler.maybe_settle(r.end_utc, boundaries[r.end_utc])
    assert [r for r, _ in settler.settlements] == periods
    settler.settlements.save(tmp_path / "sim.sqlite")

    daemon, run, sim = (_same_ledger(tmp_path / f"{n}.sqlite") for n in ("daemon", "run", "sim"))
    assert daemon == run == sim
    entries = daemon[0]
    assert [e[3] for e in entries[:len(nodes)]] == ["opening"] * len(nodes)
    with Ledger(tmp_path / "sim.sqlite") as store:
        prices = {s.member("home-1").import_price_jpy_per_kwh for s, _ in store.settlements()}
        assert prices == {TIER_1, TIER_2}  # home-1 crossed 120 kWh within the three days
        assert verify_ledger(store, site).ok


def test_a_correction_changes_the_fold_of_later_periods_as_verify_expects(ledger, tmp_path):
    book = SettlementBook(misono(), ledger)
    book.record_opening_month_import(at(0), {"home-1": D("118.5")})
    first = [book.settle(readings(at(k), home_1="0.3"))[0] for k in range(6)]
    # 118.5 + 0.3 k before period k: the second tier from period 5 (120.0 is not below 120)
    assert [s.member("home-1").import_price_jpy_per_kwh for s in first] == [TIER_1] * 5 + [TIER_2]

    # a late reading: period 1 imported 1.0 kWh, not 0.3
    settlement, result = book.settle(readings(at(1), home_1="1.0"))
    assert (result.outcome, result.revision) == ("corrected", 2)
    assert book.month_to_date_import_kwh(at(3))["home-1"] == D("118.5") + D("0.3") + D("1.0") + D("0.3") == D("120.1")
    assert SettlementBook(misono(), ledger).month_to_date_import_kwh(at(3)) == book.month_to_date_import_kwh(at(3))
    # periods 3 and 4 were settled at the first tier: verify re-settles them at the second
    report = verify_ledger(ledger, misono())
    assert not report.ok and report.problem.startswith(f"period {at(3).isoformat()} revision 1:")

    summary = settle_into_ledger(misono(), ledger, None, at(2), at(6), now_utc=CLOCK)
    assert summary.outcomes == {"new": 0, "unchanged": 2, "corrected": 2}  # periods 3 and 4
    current = [s for s, _ in ledger.settlements()]
    assert [s.member("home-1").import_price_jpy_per_kwh for s in current] == [TIER_1] * 3 + [TIER_2] * 3
    assert verify_ledger(ledger, misono()).ok


def test_the_fold_sees_writes_made_through_another_connection(ledger):
    book = SettlementBook(misono(), ledger)
    for k in range(3):
        book.settle(readings(at(k), home_1="39"))
    # another process corrects period 0 (e.g. `settle run` while the daemon runs)
    with Ledger(ledger.path) as other:
        _, result = settle_and_record(misono(), other, readings(at(0), home_1="45"))
        assert result.outcome == "corrected"
    settlement, _ = book.settle(readings(at(3), home_1="1"))
    assert book.month_to_date_import_kwh(at(3))["home-1"] == D("123")
    assert settlement.member("home-1").import_price_jpy_per_kwh == TIER_2  # 123 kWh before it, not 117
    assert verify_ledger(ledger, misono()).ok


def test_a_rolled_back_batch_leaves_nothing_and_the_fold_follows(ledger):
    book = SettlementBook(misono(), ledger)
    book.settle(readings(at(0), home_1="100"))
    with pytest.raises(RuntimeError, match="power cut"), ledger.batch():
        book.settle(readings(at(1), home_1="30"))
        raise RuntimeError("power cut")
    assert [s.start_utc for s, _ in ledger.settlements()] == [at(0)]
    # the next period is priced from 100 kWh before it, not from the rolled-back 130
    settlement, result = book.settle(readings(at(2), home_1="1"))
    assert result.outcome == "new" and settlement.member("home-1").import_price_jpy_per_kwh == TIER_1
    # inside a batch a failed period is a savepoint: the others commit
    with ledger.batch():
        book.settle(readings(at(3), home_1="1"))
        with pytest.raises(LedgerError, match="do not match"):
            ledger.record(settlement, readings(at(4), home_1="1"))
    assert [s.start_utc for s, _ in ledger.settlements()] == [at(0), at(2), at(3)]
    report = verify_ledger(ledger, misono())  # the rolled-back period is a hole in the ledger
    assert report.problem.startswith(f"period {at(1).isoformat()} is missing")
    ledger.record_gap(at(1), at(2), "rolled back (test)")
    assert verify_ledger(ledger, misono()).ok


def _rewrite_opening(path: Path, member: str, kwh: str, rebuild_chain: bool) -> int:
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER entries_append_only_u")
    seq, body = db.execute(
        "SELECT seq, body FROM entries WHERE kind = 'opening' AND member_id = ?", (member,)).fetchone()
    data = json.loads(body)
    data["grid_import_kwh"] = kwh
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (json.dumps(data, sort_keys=True, separators=(",", ":")), seq))
    if rebuild_chain:
        prev = GENESIS_HASH
        for s, period, rev, kind, m, sign, text in db.execute(
                "SELECT seq, period_start_utc, revision, kind, member_id, sign, body FROM entries ORDER BY seq").fetchall():
            digest = entry_hash(prev, period, rev, kind, m, sign, text)
            db.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, s))
            prev = digest
    db.commit()
    db.close()
    return seq


@pytest.mark.parametrize("rebuild_chain", [False, True])
def test_tampering_with_the_opening_balance_is_caught(tmp_path, rebuild_chain):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        book = SettlementBook(misono(), store)
        book.record_opening_month_import(at(0), {"home-1": D("119.5")})
        for k in range(3):
            book.settle(readings(at(k), home_1="0.3"))
        assert verify_ledger(store, misono()).ok
    seq = _rewrite_opening(path, "home-1", "100", rebuild_chain)  # the first tier for longer
    with Ledger(path) as store:
        plain, full = verify_ledger(store), verify_ledger(store, misono())
    if not rebuild_chain:
        assert not plain.ok and plain.problem.startswith(f"entry {seq} ") and "hash mismatch" in plain.problem
    else:  # chain and balances are whole again; only settling again shows period 2's price is wrong
        assert plain.ok
        assert not full.ok
        assert full.problem == f"period {at(2).isoformat()} revision 1: settling the stored readings again gives a different result"


def test_an_opening_balance_must_sit_at_a_month_start(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        store.record_opening_month_import(at(0), at(0) + dt.timedelta(days=14), {"home-1": D("10")})  # not via the book
        report = verify_ledger(store, misono())
    assert not report.ok and "not the start of a month in Asia/Tokyo" in report.problem


_OLD_ENTRIES = """CREATE TABLE entries (
    seq INTEGER PRIMARY KEY, period_start_utc TEXT NOT NULL, revision INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('period', 'member')), member_id TEXT NOT NULL,
    sign INTEGER NOT NULL CHECK (sign IN (1, -1)), body TEXT NOT NULL, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE, UNIQUE (period_start_utc, revision, kind, member_id, sign))"""


def test_a_ledger_from_before_opening_balances_is_upgraded_in_place(tmp_path):
    new, old = tmp_path / "new.sqlite", tmp_path / "old.sqlite"
    with Ledger(new, "misono") as store:
        book = SettlementBook(misono(), store)
        for k in range(2):
            book.settle(readings(at(k), home_1="1"))
        entries = [e.hash for e in store.entries()]
    db = sqlite3.connect(old)
    db.execute(_OLD_ENTRIES)
    db.execute(f"ATTACH '{new}' AS new")
    db.execute("INSERT INTO entries SELECT * FROM new.entries")
    db.execute("CREATE TABLE readings AS SELECT * FROM new.readings")
    db.commit()
    db.close()
    with Ledger(old, "misono") as store:
        assert [e.hash for e in store.entries()] == entries
        september = dt.datetime(2026, 9, 5, tzinfo=UTC)
        SettlementBook(misono(), store).record_opening_month_import(september, {"home-1": D("7")})
        assert store.openings() == {"2026-08-31T15:00:00+00:00": {"home-1": D("7")}}
        assert verify_ledger(store, misono()).ok
    db = sqlite3.connect(old)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM entries")
