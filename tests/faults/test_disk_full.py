"""A full disk under the daemon: control goes on, the log is not flooded, nothing is lost.

The daemon runs in a child process (tests/faults/disk_full_child.py) on an accelerated clock
with a real SQLite ledger; for one simulated hour its file size limit is 0, so every ledger
and outbox write really fails (EFBIG, as SQLite's writes to a full disk do), then it is lifted.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from gridctl.ledger.store import Ledger
from gridctl.ledger.verify import verify_ledger
from tests.daemon.conftest import START

REPO = Path(__file__).resolve().parents[2]
SPEED = 600.0  # accelerated seconds per real second
FULL_FROM_S, FULL_UNTIL_S, STOP_S = 2400.0, 6000.0, 8400.0  # 02:40 .. 03:40 UTC; stop 04:20
LOG_EVERY_S = 300.0  # at most one line per five minutes while the disk stays full


def run_child(ledger: Path) -> tuple[list[list[str]], list[str]]:
    """``(progress rows, log lines)`` of one child run that exits 0."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.faults.disk_full_child", str(ledger), START.isoformat(),
         str(SPEED), str(FULL_FROM_S), str(FULL_UNTIL_S), str(STOP_S)], cwd=REPO,
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert child.returncode == 0, child.stderr[-3000:]
    lines = child.stdout.splitlines()
    progress = [ln.split(" ", 6)[1:] for ln in lines if ln.startswith("PROGRESS ")]
    return progress, [ln for ln in lines if not ln.startswith("PROGRESS ")]


def test_full_disk_keeps_control_logs_rarely_and_loses_no_period(tmp_path):
    ledger_path = tmp_path / "ledger.sqlite"
    progress, log_lines = run_child(ledger_path)
    # cycle, sim_s, healthy, written, health, storage_error
    full = [p for p in progress if FULL_FROM_S + 10 <= float(p[1]) < FULL_UNTIL_S]
    after = [p for p in progress if float(p[1]) >= FULL_UNTIL_S + 10]
    assert len(full) > 100 and after
    # Control went on: every cycle healthy (watchdog kicked) and all setpoints written.
    assert all(p[2] == "1" and int(p[3]) > 0 for p in full)
    # status says why, and health is degraded; both clear once space returns.
    assert all(p[4] == "degraded" and p[5].startswith("ledger: ") and " since 2026-08-03T02:4"
               in p[5] for p in full), full[:3]
    assert all(p[4] == "healthy" and p[5] == "-" for p in after[-10:])
    # The log: a handful of lines for an hour of failing writes, not one per cycle.
    problems = [ln for ln in log_lines if " ERROR " in ln or " WARNING " in ln]
    assert len(problems) <= (FULL_UNTIL_S - FULL_FROM_S) / LOG_EVERY_S + 4, "\n".join(problems[:20])
    assert any("suppressed=" in ln for ln in problems)
    assert any("storage writes succeed again" in ln for ln in problems)
    # Nothing lost, nothing twice: every period 02:00 .. 04:00 settled once (two of them closed while full), in order.
    with Ledger(ledger_path) as ledger:
        report = verify_ledger(ledger)
        assert report.ok, report.problem
        settled = ledger.settlements()
    starts = [s.start_utc for s, _rev in settled]
    first = dt.datetime(2026, 8, 3, 2, 0, tzinfo=dt.UTC)
    assert starts == [first + dt.timedelta(minutes=30) * i for i in range(4)], starts
    assert all(rev == 1 for _s, rev in settled)
