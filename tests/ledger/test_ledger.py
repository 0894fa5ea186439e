"""The ledger on a real SQLite file: idempotence, reversals, append-only, hash chain, state, outbox."""

import datetime as dt
import functools
import json
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridctl.config import load_site
from gridctl.ledger import Ledger, LedgerError, verify_ledger
from gridctl.settlement import PeriodReadings, settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month
from tests.ledger.tamper import rebuild_chain

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"


@functools.lru_cache(maxsize=1)
def misono():
    return load_site(SITE_FILE)


@functools.lru_cache(maxsize=1)
def august_periods():
    text = format_readings(sample_month(misono(), 2026, 8))
    return periods_from_counters(parse_readings(text))


def settled(index: int):
    readings = august_periods()[index]
    return settle_period(misono(), readings), readings


@functools.lru_cache(maxsize=1)
def _trading() -> tuple[int, ...]:
    return tuple(i for i, p in enumerate(august_periods()[:200]) if settle_period(misono(), p).bought_kwh > 0)


def trading_indexes(count: int) -> list[int]:
    return list(_trading()[:count])


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite", site_id="misono") as store:
        yield store


def test_wal_and_full_sync(ledger):
    db = sqlite3.connect(ledger.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: check the ledger's own
    assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_record_then_record_again_is_idempotent(ledger):
    s, r = settled(trading_indexes(1)[0])
    assert ledger.record(s, r).outcome == "new"
    count = len(list(ledger.entries()))
    outbox = ledger.outbox_backlog()[0]
    assert ledger.record(s, r).outcome == "unchanged"
    assert len(list(ledger.entries())) == count == 1 + len(s.members)
    assert ledger.outbox_backlog()[0] == outbox == 2 + len(s.members)  # block, members, ledger head


def test_correction_is_reversal_plus_new_revision(ledger):
    index = trading_indexes(1)[0]
    s, r = settled(index)
    ledger.record(s, r)
    # a late reading raises home-2's grid import by 1 kWh: the period is settled again
    channels = tuple(
        c if (c.member_id, c.channel) != ("home-2", "grid") else
        type(c)(c.member_id, c.channel, c.start_import_kwh, c.start_export_kwh, c.end_import_kwh + 1, c.end_export_kwh)
        for c in r.channels
    )
    r2 = PeriodReadings(r.start_utc, channels)
    s2 = settle_period(misono(), r2)
    result = ledger.record(s2, r2)
    assert (result.outcome, result.revision) == ("corrected", 2)
    signs = [(e.revision, e.sign) for e in ledger.entries()]
    n = 1 + len(s.members)
    assert signs == [(1, 1)] * n + [(1, -1)] * n + [(2, 1)] * n
    (current, revision), = ledger.settlements()
    assert revision == 2 and current.member("home-2").grid_import_kwh == s.member("home-2").grid_import_kwh + 1
    assert ledger.readings(r.start_utc, 1) == r and ledger.readings(r.start_utc, 2) == r2
    assert verify_ledger(ledger).ok


@pytest.mark.parametrize("statement", ["UPDATE entries SET body = '{}'", "DELETE FROM entries", "DELETE FROM readings"])
def test_entries_and_readings_are_append_only(ledger, statement):
    ledger.record(*settled(0))
    db = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)


def test_mismatched_readings_are_refused(ledger):
    s, _ = settled(0)
    _, other = settled(1)
    with pytest.raises(LedgerError, match="do not match"):
        ledger.record(s, other)
    assert list(ledger.entries()) == []


def _tamper(path: Path, seq: int, mutate) -> None:
    """Edit an entry as an attacker with file access would: drop the trigger first."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER entries_append_only_u")
    body = json.loads(db.execute("SELECT body FROM entries WHERE seq = ?", (seq,)).fetchone()[0])
    mutate(body)
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (json.dumps(body, sort_keys=True, separators=(",", ":")), seq))
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def ten_period_ledger(tmp_path_factory):
    path = tmp_path_factory.mktemp("chain") / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        store.record_many([settled(i) for i in trading_indexes(10)])
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hash_chain_detects_any_edited_entry(ten_period_ledger, tmp_path_factory, data):
    copy = tmp_path_factory.mktemp("tamper") / "ledger.sqlite"
    copy.write_bytes(ten_period_ledger.read_bytes())
    with Ledger(copy) as store:
        entries = list(store.entries())
    victim = data.draw(st.sampled_from(entries))
    key = data.draw(st.sampled_from(sorted(k for k, v in victim.body.items() if isinstance(v, str) and k != "start_utc")))
    _tamper(copy, victim.seq, lambda body: body.__setitem__(key, body[key] + "1"))
    with Ledger(copy) as store:
        report = verify_ledger(store)
    assert not report.ok
    assert report.problem.startswith(f"entry {victim.seq} ")


def test_verify_rechecks_balances_even_with_a_rebuilt_chain(tmp_path):
    """An attacker who also recomputes every hash is caught by the money balance."""
    from gridctl.ledger.store import GENESIS_HASH, entry_hash

    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        store.record_many([settled(i) for i in trading_indexes(3)])
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER entries_append_only_u")
    seq, body = db.execute("SELECT seq, body FROM entries WHERE kind = 'member' AND body LIKE '%\"role\":\"seller\"%' LIMIT 1").fetchone()
    data = json.loads(body)
    data["p2p_received_jpy"] = str(D(data["p2p_received_jpy"]) + 1)
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (json.dumps(data, sort_keys=True, separators=(",", ":")), seq))
    prev = GENESIS_HASH
    for s, period, rev, kind, member, sign, text in db.execute(
        "SELECT seq, period_start_utc, revision, kind, member_id, sign, body FROM entries ORDER BY seq"
    ).fetchall():
        digest = entry_hash(prev, period, rev, kind, member, sign, text)
        db.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, s))
        prev = digest
    db.commit()
    with Ledger(path) as store:
        report = verify_ledger(store)
    assert not report.ok and "money balance" in report.problem


def test_state_table_round_trip(ledger, tmp_path):
    assert ledger.state_get("daemon", {"x": 0}) == {"x": 0}
    ledger.state_put("daemon", {"last_period": "2026-08-01T00:00:00+00:00", "soc_pct": [50.5, 20]})
    ledger.state_put("daemon", {"last_period": "2026-08-01T00:30:00+00:00"})
    with Ledger(ledger.path) as again:
        assert again.state_get("daemon") == {"last_period": "2026-08-01T00:30:00+00:00"}


def test_telemetry_goes_to_the_outbox(ledger):
    from influxdb_client import Point

    from gridctl.sinks import telemetry_point

    at = dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc)
    n = ledger.enqueue_telemetry([
        telemetry_point("misono", "home-1-pv", at, {"power_kw": 3.2}, member_id="home-1"),
        Point("telemetry").tag("device", "x").field("soc_pct", 50.0).time(at),
    ])
    assert n == 2
    lines = [line for _, line in ledger.outbox_peek(10)]
    assert lines[0].startswith("telemetry,device=home-1-pv,member=home-1,site=misono power_kw=3.2 ")
    assert lines[1].endswith(" 1785542400000000000")  # 2026-08-01T00:00Z in ns


def test_grid_import_over_a_range_of_periods(ledger):
    items = [settled(i) for i in range(4)]
    ledger.record_many(items)
    start = items[0][1].start_utc
    imported = ledger.grid_import_kwh(start, items[3][1].start_utc)
    expected = sum(s.member("mall").grid_import_kwh for s, _ in items[:3])
    assert imported["mall"] == expected > 0


_WRITER = """
import sys
sys.path.insert(0, {root!r})
from gridctl.config import load_site
from gridctl.ledger import Ledger
from gridctl.settlement import settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month
site = load_site({site!r})
periods = periods_from_counters(parse_readings(format_readings(sample_month(site, 2026, 8))))
ledger = Ledger({path!r}, "misono")
print("ready", flush=True)
for p in periods:
    ledger.record(settle_period(site, p), p)
"""


@pytest.mark.slow
def test_kill_9_while_recording_leaves_whole_periods(tmp_path):
    path = tmp_path / "ledger.sqlite"
    root = str(Path(__file__).resolve().parents[2])
    code = _WRITER.format(root=root, site=str(SITE_FILE), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        with Ledger(path) as probe:
            if len(probe.settlements()) >= 20:
                break
    proc.kill()
    proc.wait()
    with Ledger(path) as store:
        report = verify_ledger(store)
        assert report.ok, report.problem
        n_members = len(misono().nodes)
        per_period = {}
        for e in store.entries():
            per_period[e.period_start_utc] = per_period.get(e.period_start_utc, 0) + 1
        assert set(per_period.values()) == {1 + n_members}
        assert store.outbox_backlog()[0] == len(per_period) * (2 + n_members)  # + the ledger head
        # the interrupted run resumes: recording everything again adds only the missing periods
        before = len(per_period)
        results = store.record_many([(settle_period(misono(), p), p) for p in august_periods()[: before + 5]])
        assert [r.outcome for r in results] == ["unchanged"] * before + ["new"] * 5


def test_site_id_is_remembered(tmp_path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path, "misono").close()
    with Ledger(path) as again:
        assert again.site_id == "misono"
    with pytest.raises(LedgerError, match="belongs to site 'misono'"):
        Ledger(path, "other")


def test_settle_and_record_carries_the_month_to_date(ledger):
    from gridctl.ledger import settle_and_record
    from gridctl.ledger.batch import settle_into_ledger

    first = august_periods()[:3]
    for readings in first:
        settlement, result = settle_and_record(misono(), ledger, readings)
        assert result.outcome == "new"
    # the same periods through the batch path give identical entries: nothing new
    summary = settle_into_ledger(misono(), ledger, None, first[0].start_utc, first[-1].end_utc)
    assert summary.outcomes == {"new": 0, "unchanged": 3, "corrected": 0}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(6))), repeat=st.lists(st.integers(0, 5), min_size=1, max_size=6))
def test_resettling_in_any_order_is_idempotent(tmp_path_factory, order, repeat):
    with Ledger(tmp_path_factory.mktemp("idem") / "l.sqlite", "misono") as store:
        results = [store.record(*settled(i)).outcome for i in order]
        head, backlog = store.head_hash(), store.outbox_backlog()[0]
        again = [store.record(*settled(i)).outcome for i in repeat]
        assert results == ["new"] * 6 and again == ["unchanged"] * len(repeat)
        assert store.head_hash() == head and store.outbox_backlog()[0] == backlog


def test_grid_import_counts_only_the_current_revision(ledger):
    s, r = settled(0)
    ledger.record(s, r)
    channels = tuple(
        c if (c.member_id, c.channel) != ("mall", "grid") else
        type(c)(c.member_id, c.channel, c.start_import_kwh, c.start_export_kwh, c.end_import_kwh + 5, c.end_export_kwh)
        for c in r.channels
    )
    r2 = PeriodReadings(r.start_utc, channels)
    ledger.record(settle_period(misono(), r2), r2)
    imported = ledger.grid_import_kwh(r.start_utc, r.end_utc)
    assert imported["mall"] == s.member("mall").grid_import_kwh + 5


def test_verify_with_the_site_catches_a_consistent_rewrite(tmp_path):
    """Raising a price and every amount that depends on it keeps all balances; re-settling does not."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        store.record_many([settled(i) for i in range(4)])
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER entries_append_only_u")
    seq, body = db.execute(
        "SELECT seq, body FROM entries WHERE kind = 'member' AND member_id = 'home-1' ORDER BY seq LIMIT 1"
    ).fetchone()
    line = json.loads(body)
    assert line["role"] == "none" and D(line["grid_import_kwh"]) > 0  # night: imports only
    price = D(line["import_price_jpy_per_kwh"]) + 1
    imported = D(line["grid_import_kwh"])
    line["import_price_jpy_per_kwh"] = str(price)
    line["grid_import_jpy"] = str((price * imported).quantize(D("0.0001")))
    line["grid_only_jpy"] = str(D(line["grid_import_jpy"]) - D(line["grid_export_jpy"]))
    line["bill_jpy"] = line["grid_only_jpy"]
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (json.dumps(line, sort_keys=True, separators=(",", ":")), seq))
    rebuild_chain(db)
    db.commit()
    with Ledger(path) as store:
        assert verify_ledger(store).ok  # balances and chain alone cannot see it
        report = verify_ledger(store, misono())
    assert not report.ok and "settling the stored readings again gives a different result" in report.problem
