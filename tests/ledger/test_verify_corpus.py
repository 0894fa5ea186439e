"""A corpus of damaged and tampered ledgers, each verified through the real CLI in a subprocess.

Every tampering goes through sqlite3 directly, as an attacker with the file would: the
append-only triggers dropped, the hash chain recomputed where that hides the change. Each
must exit with its code, print exactly one line on stderr naming the problem, and never a
traceback; a clean ledger, sealed or not, verifies ok and prints the head to hold.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pytest

from gridctl.ledger import Ledger
from gridctl.ledger.seal import seal_mac
from gridctl.ledger.store import GENESIS_HASH, entry_hash
from gridctl.settlement import settle_period

from .tamper import rebuild_chain
from .test_ledger import august_periods, misono

ROOT = Path(__file__).resolve().parents[2]
KEY = b"ledger-key-of-the-misono-box"
TRIGGERS = [f"{t}_append_only_{op}" for t in ("entries", "readings", "seals") for op in ("u", "d")]
PERIODS = range(20, 30)  # ten consecutive half hours of 2026-08-01 (JST morning)
CORRECTED = 23  # settled again with another month-to-date import: a revision 2


def _build(path: Path, key: bytes | None) -> None:
    site, periods = misono(), august_periods()
    with Ledger(path, "misono", key=key) as store:
        store.record_many([(settle_period(site, periods[i]), periods[i]) for i in PERIODS[:5]])
        r = periods[CORRECTED]
        assert store.record(settle_period(site, r, {"home-1": D(500)}), r).outcome == "corrected"
        for i in PERIODS[5:]:
            store.record(settle_period(site, periods[i]), periods[i])


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    out = {"sealed": folder / "sealed.sqlite", "plain": folder / "plain.sqlite"}
    _build(out["sealed"], KEY)
    _build(out["plain"], None)
    (folder / "key").write_text(KEY.decode() + "\n")
    (folder / "wrong-key").write_text("not-the-key\n")
    return out


def verify(path: Path, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from gridctl.cli import main; main()", "settle", "verify", "--ledger", str(path), *args],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def append(db: sqlite3.Connection, period: str, revision: int, kind: str, member: str, sign: int, body: str) -> None:
    prev = db.execute("SELECT hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()[0]
    db.execute("INSERT INTO entries (period_start_utc, revision, kind, member_id, sign, body, prev_hash, hash)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (period, revision, kind, member, sign, body, prev, entry_hash(prev, period, revision, kind, member, sign, body)))


def nth_period(db: sqlite3.Connection, n: int) -> str:
    return db.execute("SELECT DISTINCT period_start_utc FROM entries ORDER BY 1 LIMIT 1 OFFSET ?", (n,)).fetchone()[0]


def corrected(db: sqlite3.Connection) -> str:
    return db.execute("SELECT period_start_utc FROM entries WHERE revision = 2 LIMIT 1").fetchone()[0]


def edit_body(db: sqlite3.Connection, where: str, change: Callable[[dict], None]) -> None:
    seq, body = db.execute(f"SELECT seq, body FROM entries WHERE {where} ORDER BY seq LIMIT 1").fetchone()
    data = json.loads(body)
    change(data)
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (json.dumps(data, sort_keys=True), seq))


def remove_period(db: sqlite3.Connection, period: str, seals: bool = False) -> None:
    db.execute("DELETE FROM entries WHERE period_start_utc = ?", (period,))
    db.execute("DELETE FROM readings WHERE period_start_utc = ?", (period,))
    if seals:
        last = db.execute("SELECT MAX(seq) FROM entries").fetchone()[0]
        db.execute("DELETE FROM seals WHERE seq > ?", (last,))


def orphan_reversal(db: sqlite3.Connection) -> None:
    period, revision, kind, member, body = db.execute(
        "SELECT period_start_utc, revision, kind, member_id, body FROM entries WHERE sign = 1 ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    append(db, period, revision, kind, member, -1, body)


def duplicate_period(db: sqlite3.Connection) -> None:
    """Rebuild the table without its UNIQUE constraint and record a period twice."""
    db.execute("CREATE TABLE copy (seq INTEGER PRIMARY KEY, period_start_utc, revision, kind, member_id, sign,"
               " body, prev_hash, hash)")
    db.execute("INSERT INTO copy SELECT * FROM entries")
    db.execute("DROP TABLE entries")
    db.execute("ALTER TABLE copy RENAME TO entries")
    period = nth_period(db, 7)
    for row in db.execute("SELECT period_start_utc, revision, kind, member_id, sign, body FROM entries"
                          " WHERE period_start_utc = ? ORDER BY seq", (period,)).fetchall():
        append(db, *row)


def revision_hole(db: sqlite3.Connection) -> None:
    period = corrected(db)
    db.execute("UPDATE entries SET revision = 3 WHERE period_start_utc = ? AND revision = 2", (period,))
    db.execute("UPDATE readings SET revision = 3 WHERE period_start_utc = ? AND revision = 2", (period,))
    rebuild_chain(db)


def rewrite_superseded_readings(db: sqlite3.Connection) -> None:
    from gridctl.settlement.model import PeriodReadings

    period = corrected(db)
    body = db.execute("SELECT body FROM readings WHERE period_start_utc = ? AND revision = 1", (period,)).fetchone()[0]
    rows = json.loads(body)
    rows["channels"][0]["end_import_kwh"] = str(D(rows["channels"][0]["end_import_kwh"]) + 2)
    readings = PeriodReadings.from_json(json.dumps(rows))
    db.execute("UPDATE readings SET body = ?, sha256 = ? WHERE period_start_utc = ? AND revision = 1",
               (readings.to_json(), readings.sha256(), period))


def hide_a_removed_period_behind_a_gap(db: sqlite3.Connection) -> None:
    period = nth_period(db, 4)
    remove_period(db, period)
    append(db, period, 1, "gap", "", 1, json.dumps({"end_utc": nth_period(db, 4), "reason": "meter outage"}))
    rebuild_chain(db)


def forge_seals(db: sqlite3.Connection) -> None:
    remove_period(db, nth_period(db, 4))
    rebuild_chain(db)
    db.execute("DELETE FROM seals")
    seq, head = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    db.execute("INSERT INTO seals VALUES (?, ?, ?)", (seq, head, seal_mac(b"not-the-key", seq, head)))


def damage_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle + 8:middle + page - 8] = b"\x5a" * (page - 16)
    path.write_bytes(bytes(data))


def other_sqlite(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total_jpy TEXT)")
    db.execute("INSERT INTO invoices VALUES (1, '1000')")
    db.commit()
    db.close()


# name: (base, tamper through sqlite3 or None, tamper the file bytes or None, CLI options, exit, stderr holds)
KEYED = ("--key-file", "{key}")
CASES = {
    "bytes damaged mid-file": ("plain", None, damage_bytes, (), 2, "ledger is damaged"),
    "empty file": ("plain", None, lambda p: p.write_bytes(b""), (), 2, "not a gridctl ledger (empty file)"),
    "random bytes": ("plain", None, lambda p: p.write_bytes(bytes(range(256)) * 64), (), 2,
                     "not a gridctl ledger (not an SQLite database)"),
    "another SQLite file": ("plain", None, other_sqlite, (), 2, "not a gridctl ledger (no entries table)"),
    "entry body not JSON": ("plain", lambda db: (db.execute("UPDATE entries SET body = '{oops' WHERE seq = 3"),
                                                 rebuild_chain(db)), None, (), 1,
                            "entry 3 (period 2026-08-01T01:00:00+00:00, member home-2, revision 1): body is not JSON"),
    "readings body not JSON": ("plain", lambda db: db.execute(
        "UPDATE readings SET body = '[1' WHERE rowid = 2"), None, (), 1, "revision 1: body is not JSON readings"),
    "non-numeric amount, chain rebuilt": ("plain", lambda db: (
        edit_body(db, "kind = 'member'", lambda b: b.__setitem__("bill_jpy", "12,5")), rebuild_chain(db)),
        None, (), 1, "entry 2 (period 2026-08-01T01:00:00+00:00, member home-1, revision 1): body holds a value"),
    "period entry deleted, chain rebuilt": ("plain", lambda db: (
        db.execute("DELETE FROM entries WHERE seq = 17"), rebuild_chain(db)), None, (), 1,
        "revision 1 has 0 period entries and 7 member entries"),
    "member entry deleted, chain rebuilt": ("plain", lambda db: (
        db.execute("DELETE FROM entries WHERE seq = 20"), rebuild_chain(db)), None, (), 1,
        "revision 1: member entries do not match the block's members"),
    "last period removed, sealed": ("sealed", lambda db: remove_period(db, nth_period(db, 9)), None, KEYED, 1,
                                    "the sealed entry no longer exists"),
    "last period and its seals removed, anchored": (
        "sealed", lambda db: remove_period(db, nth_period(db, 9), seals=True), None, (*KEYED, "--anchor", "{head}"),
        1, "is missing (entries removed)"),
    "middle period removed, chain rebuilt": ("plain", lambda db: (remove_period(db, nth_period(db, 4)),
                                                                  rebuild_chain(db)), None, (), 1,
                                             "period 2026-08-01T03:00:00+00:00 is missing"),
    "middle period removed, chain rebuilt, --config": (
        "plain", lambda db: (remove_period(db, nth_period(db, 4)), rebuild_chain(db)), None,
        ("--config", str(ROOT / "configs" / "misono.yaml")), 1, "period 2026-08-01T03:00:00+00:00 is missing"),
    "middle period removed behind a forged gap, sealed": ("sealed", hide_a_removed_period_behind_a_gap, None,
                                                          KEYED, 1, "seal at entry"),
    "superseded readings rewritten": ("plain", rewrite_superseded_readings, None, (), 1,
                                      "revision 1: readings do not match the settlement's readings hash"),
    "orphan reversal appended": ("plain", orphan_reversal, None, (), 1, "(orphan reversal)"),
    "duplicated period": ("plain", duplicate_period, None, (), 1, "revision 1 has 2 period entries"),
    "revision hole": ("plain", revision_hole, None, (), 1, "revision 2 is missing (revisions are 1, 3)"),
    "seals forged with another key": ("sealed", forge_seals, None, KEYED, 1, "MAC does not match"),
    "clean ledger checked with the wrong key": ("sealed", None, None, ("--key-file", "{wrong}"), 1,
                                                "MAC does not match"),
    "unsealed ledger checked with a key": ("plain", None, None, KEYED, 1, "the ledger has no seals"),
    "anchor of a rebuilt chain": ("plain", lambda db: (edit_body(db, "seq = 9", lambda b: b.__setitem__(
        "flags", ["x"])), rebuild_chain(db)), None, ("--anchor", "{head}"), 1, "has another hash (chain rebuilt)"),
    "bad --anchor": ("plain", None, None, ("--anchor", "12:abc"), 2, "is not SEQ:SHA256"),
}


def _tampered(bases: dict[str, Path], tmp_path: Path, base: str, on_db, on_file) -> Path:
    path = tmp_path / "ledger.sqlite"
    shutil.copyfile(bases[base], path)
    if on_db is not None:
        db = sqlite3.connect(path)
        for trigger in TRIGGERS:
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        on_db(db)
        db.commit()
        db.close()
    if on_file is not None:
        on_file(path)
    return path


def _head(path: Path) -> str:
    db = sqlite3.connect(path)
    seq, digest = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    db.close()
    return f"{seq}:{digest}"


@pytest.mark.parametrize("name", list(CASES))
def test_damaged_ledger_gets_one_line_and_its_exit_code(bases, tmp_path, name):
    base, on_db, on_file, options, exit_code, expected = CASES[name]
    folder = bases["sealed"].parent
    values = {"key": str(folder / "key"), "wrong": str(folder / "wrong-key"), "head": _head(bases[base])}
    path = _tampered(bases, tmp_path, base, on_db, on_file)
    code, out, err = verify(path, *(o.format(**values) for o in options))
    assert "Traceback" not in err
    assert (code, err.count("\n")) == (exit_code, 1), err
    assert err.startswith(f"error: {path}" if exit_code == 1 or on_file else "error: ") and expected in err, err
    assert out == ""


def test_clean_ledgers_verify_and_print_the_head(bases):
    folder = bases["sealed"].parent
    head = _head(bases["sealed"])
    code, out, err = verify(bases["sealed"], "--key-file", str(folder / "key"), "--anchor", head)
    assert code == 0, err
    summary, last = out.splitlines()
    assert summary.endswith("ok: 96 entries, 10 periods (0 declared as gaps); 7 seals checked, head sealed;"
                            " 1 anchors held")
    seq, digest = head.split(":")
    assert last == f"head seq {seq} sha256 {digest}"
    code, out, err = verify(bases["sealed"])
    assert code == 0 and "head not checked: 7 seals, give --key-file to check them" in out, err
    code, out, err = verify(bases["plain"])
    assert code == 0 and "head not sealed (no key)" in out, err


def test_an_empty_ledger_verifies_as_empty_and_fails_an_anchor(tmp_path):
    path = tmp_path / "new.sqlite"
    Ledger(path, "misono").close()
    code, out, err = verify(path)
    assert code == 0, err
    assert out.splitlines() == [f"{path}: ok: empty ledger (nothing recorded yet): 0 entries; head not sealed"
                                " (no key); 0 anchors held", f"head seq 0 sha256 {GENESIS_HASH}"]
    code, out, err = verify(path, "--anchor", f"3:{'a' * 64}")
    assert code == 1 and "entry 3 is missing" in err and err.count("\n") == 1


def test_settle_run_and_the_daemon_seal_with_the_site_credential(tmp_path, monkeypatch):
    """``storage.ledger_key_credential`` makes every writer seal; verify --config checks the seals."""
    from typer.testing import CliRunner

    from gridctl.cli import app
    from gridctl.config import load_site
    from gridctl.daemon.lifecycle.build import ledger_key
    from gridctl.settlement.readings_csv import format_readings
    from gridctl.settlement.sample import sample_month

    text = (ROOT / "configs" / "misono.yaml").read_text(encoding="utf-8")
    site_file = ROOT / "configs" / f".sealed-{os.getpid()}.yaml"  # beside devices/, which it names
    site_file.write_text(text.replace("storage:\n", "storage:\n  ledger_key_credential: ledger-key\n", 1))
    try:
        site = load_site(site_file)
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "ledger-key").write_text(KEY.decode() + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        assert ledger_key(site) == KEY  # what the daemon's ledger is opened with
        readings = tmp_path / "r.csv"
        rows = [r for r in sample_month(site, 2026, 8) if r[0].day == 3]
        readings.write_text(format_readings(rows))
        ledger = tmp_path / "ledger.sqlite"
        result = CliRunner().invoke(app, ["settle", "run", "-c", str(site_file), "--ledger", str(ledger),
                                          "--readings", str(readings)])
        assert result.exit_code == 0, result.stderr
        code, out, err = verify(ledger, "--config", str(site_file))
        assert code == 0 and "seals checked, head sealed" in out, err  # the child reads the credential
        code, out, err = verify(ledger, "--key-file", str(tmp_path / "creds" / "ledger-key"))
        assert code == 0 and "seals checked, head sealed" in out, err
        monkeypatch.delenv("CREDENTIALS_DIRECTORY")
        assert ledger_key(site) is None
    finally:
        site_file.unlink()
