"""A second controller of one block is refused; so is a daemon without an operator path.

Real processes: the running daemon is ``tests.faults.daemon_child`` (scripted plant, real
ledger, real operator socket); the second one is the real CLI, ``gridctl run SITE``, started
from another folder with its own socket path and ledger. ``gridctl settle`` against the running
daemon's ledger is refused for writing and works for verifying.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gridctl.daemon.lifecycle.operator import request
from gridctl.ledger.store import Ledger
from gridctl.ledger.verify import verify_ledger
from tests.daemon.conftest import START
from tests.faults.test_kill9 import REPO, cycles_of, wait_first_cycle
from tests.fixtures.emulators import write_site_config

CLI = [sys.executable, "-c", "from gridctl.cli import main; main()"]


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, timeout=120)


def start_child(ledger: Path, progress: Path, socket: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.daemon_child", str(ledger), START.isoformat(), "1",
         str(progress)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "GRIDCTL_TEST_SOCKET": str(socket)})


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_second_daemon_of_the_site_and_ledger_writers_are_refused(tmp_path):
    first_dir, other_dir = tmp_path / "first", tmp_path / "other"
    first_dir.mkdir()
    other_dir.mkdir()
    ledger, progress = first_dir / "ledger.sqlite", first_dir / "progress.txt"
    socket = first_dir / "gridctl.sock"
    config = write_site_config(other_dir, node_ids=["home-1", "home-2"])  # site id misono
    child = start_child(ledger, progress, socket)
    try:
        wait_first_cycle(child, progress)
        # Another folder, another socket path, another ledger: still the same block.
        twin = cli(["run", str(config), "--duration", "20"], other_dir)
        line = one_error_line(twin)
        assert f"site 'misono' is already controlled by gridctl run pid {child.pid}" in line, line
        assert not (other_dir / "var" / "misono" / "gridctl.sock").exists()
        # Writing the running daemon's ledger is refused; reading it is not.
        settle = cli(["settle", "run", "-c", str(config), "--ledger", str(ledger),
                      "--from", "2026-08-03T00:00+09:00", "--to", "2026-08-04T00:00+09:00"], REPO)
        line = one_error_line(settle)
        assert f"{ledger}: ledger in use by gridctl run pid {child.pid}" in line, line
        verify = cli(["settle", "verify", "--ledger", str(ledger)], REPO)
        assert verify.returncode == 0 and "ok:" in verify.stdout, verify.stderr
        before = len(cycles_of(progress)[child.pid])
        status = request(socket, {"cmd": "status"})  # the first daemon still answers and runs
        assert status["cycles"] >= 1
        wait_cycles(child, progress, before + 2)
    finally:
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=60)
    assert code == 0, child.stderr.read().decode()[-2000:]
    assert set(cycles_of(progress)) == {child.pid}
    with Ledger(other_dir / "var" / "misono" / "ledger.sqlite") as refused:
        assert refused.state_get("daemon.controller_state") is None  # the twin recorded nothing
    with Ledger(ledger) as kept:
        assert verify_ledger(kept).ok
        assert kept.state_get("daemon.controller_state") is not None


def wait_cycles(child: subprocess.Popen, progress: Path, count: int) -> None:
    for _ in range(600):
        if len(cycles_of(progress).get(child.pid, [])) >= count:
            return
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    raise AssertionError(f"the first daemon stopped cycling before {count} cycles")


def test_daemon_refuses_to_run_without_its_operator_socket(tmp_path):
    config = write_site_config(tmp_path, node_ids=["home-1", "home-2"])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the socket's folder should be\n")
    text = config.read_text(encoding="utf-8")
    assert "socket_path: var/misono/gridctl.sock" in text
    config.write_text(text.replace("socket_path: var/misono/gridctl.sock",
                                   f"socket_path: {blocker}/gridctl.sock"), encoding="utf-8")
    result = cli(["run", str(config), "--duration", "10"], tmp_path)
    line = one_error_line(result)
    assert f"{blocker}/gridctl.sock: cannot create the operator socket" in line, line
    with Ledger(tmp_path / "var" / "misono" / "ledger.sqlite") as ledger:
        assert ledger.state_get("daemon.controller_state") is None  # no cycle ran
