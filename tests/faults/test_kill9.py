"""kill -9 of the daemon at random moments, repeated, then a clean stop: nothing lost or doubled.

The daemon runs in a child process (a real SIGKILL needs a real process) on an accelerated
clock, with the scripted plant of the cycle tables and a real SQLite ledger.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridctl.ledger.store import Ledger
from gridctl.ledger.verify import verify_ledger
from tests.daemon.conftest import START

REPO = Path(__file__).resolve().parents[2]
SPEED = 300.0  # accelerated seconds per real second


def start(ledger: Path, progress: Path, first_s: float) -> subprocess.Popen:
    base = START + dt.timedelta(seconds=(time.monotonic() - first_s) * SPEED)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.daemon_child", str(ledger), base.isoformat(),
         str(SPEED), str(progress)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})


def cycles_of(progress: Path) -> dict[int, list[tuple[int, int, int]]]:
    runs: dict[int, list[tuple[int, int, int]]] = {}
    for line in progress.read_text().splitlines():
        pid, count, healthy, bad = (int(x) for x in line.split())
        runs.setdefault(pid, []).append((count, healthy, bad))
    return runs


def wait_first_cycle(child: subprocess.Popen, progress: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if progress.exists() and child.pid in cycles_of(progress):
            return
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    raise AssertionError("the daemon ran no cycle")


@pytest.mark.slow
def test_repeated_kill9_then_clean_stop(tmp_path):
    rng = random.Random(7)
    ledger_path, progress = tmp_path / "ledger.sqlite", tmp_path / "progress.txt"
    first_s = time.monotonic()
    pids = []
    for _ in range(6):
        child = start(ledger_path, progress, first_s)
        pids.append(child.pid)
        wait_first_cycle(child, progress)
        time.sleep(rng.uniform(0.5, 4.0))  # a random moment: mid-cycle, mid-settlement, ...
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    child = start(ledger_path, progress, first_s)
    pids.append(child.pid)
    wait_first_cycle(child, progress)
    # Stop the last daemon only after the time line has passed 04:12 UTC, so four whole periods
    # (02:00 .. 04:00) are closed and past their grace time however fast the machine ran the
    # kills (a fixed sleep made the count depend on machine speed).
    time.sleep(max(3.0, first_s + 2.2 * 3600 / SPEED - time.monotonic()))
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 0, child.stderr.read().decode()[-2000:]

    runs = cycles_of(progress)
    assert set(runs) == set(pids)
    for pid in pids:
        cycles = runs[pid]
        assert cycles[0][1] == 1, f"run {pid}: first cycle after the restart not healthy"
        assert all(bad == 0 for _c, _h, bad in cycles), f"run {pid}: setpoint outside limits"
    with Ledger(ledger_path) as ledger:
        report = verify_ledger(ledger)
        assert report.ok, report.problem
        settled = ledger.settlements()
    starts = [s.start_utc for s, _rev in settled]
    assert len(starts) >= 4, starts
    assert all(rev == 1 for _s, rev in settled)  # never settled twice (no correction needed)
    assert starts == [starts[0] + dt.timedelta(minutes=30) * i for i in range(len(starts))]


def test_first_signal_stops_safely_second_exits_at_once(tmp_path):
    """With a device that never acknowledges the release, shutdown waits on it (bounded by the
    device timeout); a second SIGTERM in that window exits at once with code 1."""
    ledger_path, progress = tmp_path / "ledger.sqlite", tmp_path / "progress.txt"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "GRIDCTL_TEST_STUCK_RELEASE": "1"}
    codes = []
    for signals in (1, 2):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.daemon_child", str(ledger_path),
             START.isoformat(), "1", str(progress)], cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env)
        wait_first_cycle(child, progress)
        child.send_signal(signal.SIGTERM)
        if signals == 2:
            time.sleep(0.1)
            child.send_signal(signal.SIGTERM)
        codes.append(child.wait(timeout=60))
    assert codes == [0, 1]
