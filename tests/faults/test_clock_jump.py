"""A clock jump forward and back with every period settled exactly once afterwards.

The daemon runs in a child process on an accelerated clock (see ``daemon_child``) whose wall
clock steps +2 days for one minute and back, as a bad NTP answer would. The devices' counters
keep true time. Afterwards the real SQLite ledger must hold every period from the start up to
the last one due, each exactly once, none in the future of true time, none flagged missing.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gridctl.ledger.store import Ledger
from gridctl.ledger.verify import verify_ledger
from tests.daemon.conftest import START
from tests.faults.test_kill9 import wait_first_cycle

REPO = Path(__file__).resolve().parents[2]
SPEED = 400.0  # accelerated seconds per real second
PERIOD = dt.timedelta(minutes=30)
GRACE = dt.timedelta(seconds=120)  # the Misono site's market.grace_period_s


def test_clock_jump_forward_and_back_settles_every_period_exactly_once(tmp_path):
    ledger_path, progress = tmp_path / "ledger.sqlite", tmp_path / "progress.txt"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "GRIDCTL_TEST_POLL_S": "5",
           # At 02:40 the wall clock reads 2 days ahead for 60 s, then is right again.
           "GRIDCTL_TEST_CLOCK_JUMP": f"{40 * 60},{2 * 86400},60"}
    spawned_s = time.monotonic()  # the child's clock starts later: bounds from above
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.daemon_child", str(ledger_path), START.isoformat(),
         str(SPEED), str(progress)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=env)
    try:
        wait_first_cycle(child, progress)
        started_s = time.monotonic()  # its first cycle ran: bounds its time line from below
        # True time 03:37 UTC: three periods (02:00, 02:30, 03:00) closed and past their grace.
        time.sleep(max(0.0, started_s + 97 * 60 / SPEED - time.monotonic()))
        stopped_at = START + dt.timedelta(seconds=(time.monotonic() - started_s) * SPEED)
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=60)
        true_end = START + dt.timedelta(seconds=(time.monotonic() - spawned_s) * SPEED)
    finally:
        if child.poll() is None:
            child.kill()
    stderr = child.stderr.read().decode()
    assert code == 0, stderr[-2000:]

    with Ledger(ledger_path) as ledger:
        report = verify_ledger(ledger)
        assert report.ok, report.problem
        settled = ledger.settlements()
    starts = [s.start_utc for s, _rev in settled]
    assert all(start + PERIOD <= true_end for start in starts), "settled a future period"
    assert all(rev == 1 for _s, rev in settled)  # none settled twice
    due = stopped_at - GRACE
    expected = [dt.datetime(2026, 8, 3, 2, 0, tzinfo=dt.UTC) + PERIOD * i for i in range(8)]
    expected = [p for p in expected if p + PERIOD <= due]
    assert len(expected) >= 3
    assert starts[:len(expected)] == expected, starts  # none missing after the recovery
    assert len(starts) == len(set(starts)) and len(starts) <= len(expected) + 1
    # Every counter was read at its boundary, the period with the jump included (the first
    # period lacks its start: the devices were still connecting at the daemon's first cycle).
    assert not [f for s, _rev in settled[1:] for f in s.flags if f.startswith("missing")]
    assert "wall clock jumped jump_s=+172800" in stderr  # said loudly, with its size
