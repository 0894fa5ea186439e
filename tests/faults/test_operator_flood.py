"""1,000 idle operator connections against a daemon with a 160-descriptor limit: control goes on.

A real daemon process (``tests.faults.daemon_child``: scripted plant, real ledger, real operator
socket) runs with ``RLIMIT_NOFILE`` 160, as in the field report. The test opens 1,000 Unix
socket connections and holds them without a word. Cycles must keep completing, a fresh
``status`` must answer, the daemon's open descriptors must stay bounded (read from
/proc/PID/fd) and the log must not repeat itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from gridctl.daemon.lifecycle.operator import ACCEPT_BACKLOG, MAX_CONNECTIONS, request
from gridctl.ledger.store import Ledger
from gridctl.ledger.verify import verify_ledger
from tests.daemon.conftest import START
from tests.faults.test_kill9 import REPO, cycles_of, wait_first_cycle

NOFILE = 160
CLIENTS = 1000
SPEED = 10.0  # the child's 2 s poll period takes 0.2 s


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def hold_connections(path: Path, count: int, deadline_s: float) -> list[socket.socket]:
    """Connect ``count`` clients that never send anything; retry while the backlog is full."""
    held: list[socket.socket] = []
    while len(held) < count and time.monotonic() < deadline_s:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(str(path))
        except (BlockingIOError, InterruptedError):  # listen backlog full: let the daemon accept
            sock.close()
            time.sleep(0.005)
            continue
        held.append(sock)
    return held


#: Descriptors the daemon holds while it spawns its clear-sky child (gridctl.daemon.stages.clearsky):
#: both ends of the stdin, stdout and stderr pipes and of subprocess's exec-error pipe, until exec.
CLEAR_SKY_CHILD_FDS = 8


def test_thousand_idle_operator_connections_do_not_stop_control(tmp_path):
    ledger, progress, path = tmp_path / "ledger.sqlite", tmp_path / "progress.txt", tmp_path / "op.sock"
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.daemon_child", str(ledger), START.isoformat(),
             str(SPEED), str(progress)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=log_file,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "GRIDCTL_TEST_SOCKET": str(path),
                 "GRIDCTL_TEST_NOFILE": str(NOFILE)})
    held: list[socket.socket] = []
    try:
        wait_first_cycle(child, progress)
        assert request(path, {"cmd": "status"})["cycles"] >= 1
        baseline = open_fds(child.pid)
        held = hold_connections(path, CLIENTS, time.monotonic() + 20.0)
        assert len(held) == CLIENTS, f"only {len(held)} connections accepted"
        flooded = len(cycles_of(progress)[child.pid])
        most = open_fds(child.pid)
        for _ in range(50):  # descriptors sampled while cycles go on under the held connections
            time.sleep(0.05)
            most = max(most, open_fds(child.pid))
        status = request(path, {"cmd": "status"}, timeout_s=5.0)
        cycles = cycles_of(progress)[child.pid]
        assert len(cycles) >= flooded + 5, (flooded, len(cycles))  # ~0.2 s each: 2.5 s passed
        assert all(healthy == 1 and bad == 0 for _c, healthy, bad in cycles[flooded:])
        assert status["cycles"] >= cycles[flooded - 1][0]
        # + the pipes of a clear-sky child process the planner may be running meanwhile
        assert most <= baseline + MAX_CONNECTIONS + ACCEPT_BACKLOG + CLEAR_SKY_CHILD_FDS + 8, (baseline, most)
    finally:
        for sock in held:
            sock.close()
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=60)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    assert code == 0, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    repeated = [ln for ln in text.splitlines() if "operator connections" in ln
                or "out of system resource" in ln]
    assert 1 <= len(repeated) <= 2, repeated[:5]  # rate-limited: once, not ~936 times
    with Ledger(ledger) as kept:
        assert verify_ledger(kept).ok
        assert kept.state_get("daemon.controller_state") is not None
