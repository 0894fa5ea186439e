"""A corrupt ledger page giving one line: ``gridctl run`` and ``gridctl settle`` on damaged files.

Real processes on real files: a ledger of settled periods is made with the real store, then
damaged the ways a disk, a copy or an installer damages files. Every command must answer with
one line naming the file and what is wrong, exit 2 (bad input), no traceback, and leave the
file's bytes exactly as they were.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gridctl.ledger import Ledger, verify_ledger
from gridctl.settlement import settle_period
from tests.ledger.test_ledger import august_periods, misono

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from gridctl.cli import main; main()"]
PAGE = 4096


@pytest.fixture(scope="module")
def good_ledger(tmp_path_factory) -> Path:
    """A checkpointed ledger of 150 settled periods (about 2 MB; every page in use)."""
    path = tmp_path_factory.mktemp("good") / "ledger.sqlite"
    with Ledger(path, "misono") as ledger:
        ledger.record_many([(settle_period(misono(), r), r) for r in august_periods()[:150]])
    return path  # closed: the WAL is checkpointed into the file


def _corrupt_page(path: Path) -> None:
    pages = path.stat().st_size // PAGE
    with path.open("r+b") as f:
        f.seek(PAGE * (pages // 2))
        f.write(bytes(range(256)) * (PAGE // 256))


def _truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2 + 1000)


def _random(path: Path) -> None:
    path.write_bytes(os.urandom(40 * PAGE))


def _text(path: Path) -> None:
    path.write_text("period,member,kwh\n" * 500, encoding="utf-8")


def _other_database(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO photos (name) VALUES ('beach')")
    db.commit()
    db.close()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = {
    "corrupt page": (_corrupt_page, "ledger is damaged"),
    "truncated": (_truncated, "ledger is damaged"),
    "random bytes": (_random, "not a gridctl ledger (not an SQLite database)"),
    "not a database": (_text, "not a gridctl ledger (not an SQLite database)"),
    "another SQLite database": (_other_database, "not a gridctl ledger (no entries table)"),
    "empty file": (_empty, "not a gridctl ledger (empty file)"),
}


def damaged(good: Path, tmp_path: Path, kind: str) -> tuple[Path, str, str]:
    """A damaged copy of ``good``: (path, expected message, sha256 of its bytes)."""
    path = tmp_path / "ledger.sqlite"
    shutil.copy(good, path)
    make, message = DAMAGE[kind]
    make(path)
    return path, message, hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line(result: subprocess.CompletedProcess, path: Path, message: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {message}"), result.stderr[-2000:]


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_settle_verify_gives_one_line_and_leaves_the_file_alone(good_ledger, tmp_path, kind):
    path, message, digest = damaged(good_ledger, tmp_path, kind)
    result = subprocess.run(CLI + ["settle", "verify", "--ledger", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert_one_line(result, path, message)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("kind", ["corrupt page", "another SQLite database", "empty file"])
def test_run_and_report_give_one_line_and_leave_the_file_alone(good_ledger, tmp_path, kind):
    path, message, digest = damaged(good_ledger, tmp_path, kind)
    site = (REPO / "configs" / "misono.yaml").read_text(encoding="utf-8")
    config = tmp_path / "site.yaml"
    (tmp_path / "devices").symlink_to(REPO / "configs" / "devices")  # the site's profiles
    config.write_text(site.replace("ledger_path: var/misono/ledger.sqlite",
                                   f"ledger_path: {path}"), encoding="utf-8")
    run = subprocess.run(CLI + ["run", str(config), "--duration", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert_one_line(run, path, message)
    report = subprocess.run(CLI + ["settle", "report", "--ledger", str(path), "--month", "2026-08",
                                   "--format", "csv", "--out", str(tmp_path / "out")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert_one_line(report, path, message)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_verify_reads_a_read_only_ledger_and_never_writes(good_ledger, tmp_path):
    path = tmp_path / "ledger.sqlite"
    shutil.copy(good_ledger, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.chmod(0o444)
    with Ledger(path, read_only=True) as ledger:
        report = verify_ledger(ledger)
        assert report.ok and report.periods_checked == 150
        with pytest.raises(Exception, match="readonly"):
            ledger.state_put("x", 1)  # mode=ro: refused by SQLite itself, whoever runs it
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_opening_an_empty_file_read_only_makes_no_schema(tmp_path):
    from gridctl.ledger import LedgerFileError

    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"")
    with pytest.raises(LedgerFileError, match="empty file"):
        Ledger(path, read_only=True)
    with pytest.raises(LedgerFileError, match="no such ledger"):
        Ledger(tmp_path / "absent.sqlite", read_only=True)
    assert path.read_bytes() == b"" and not (tmp_path / "absent.sqlite").exists()
