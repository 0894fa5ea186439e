"""The main-job quick start: ``gridctl run CONFIG --emulate --live`` and ``gridctl status``.

Real processes all the way: the CLI starts ``gridctl emulate`` as its child, the daemon
controls the emulated devices, and ``gridctl status`` reads the running daemon's socket.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from gridctl.ledger.store import Ledger
from tests.fixtures.emulators import write_site_config

CLI = [sys.executable, "-c", "from gridctl.cli import main; main()"]


@pytest.mark.slow
def test_run_emulate_live_then_status_shows_it_controlling(tmp_path):
    config = write_site_config(tmp_path, node_ids=["home-1", "home-2"])
    daemon = subprocess.Popen(CLI + ["run", str(config), "--emulate", "--live", "--duration", "300"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status, deadline = None, time.monotonic() + 120
    try:
        while time.monotonic() < deadline and daemon.poll() is None:
            answer = subprocess.run(CLI + ["status", "--config", str(config), "--json"], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=60)
            if answer.returncode == 0:
                status = json.loads(answer.stdout)
                if status["cycles"] >= 3 and all(d["ok"] for d in status["devices"].values()):
                    break
            time.sleep(1.0)
        text = subprocess.run(CLI + ["status", "--config", str(config)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    finally:
        daemon.send_signal(signal.SIGTERM)  # first signal: safe stop, exit 0
        out, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err[-3000:]
    assert status is not None, err[-3000:]
    assert status["mode"] == "grid_connected" and status["healthy"]
    assert len(status["devices"]) == 8 and all(d["ok"] for d in status["devices"].values())
    assert "mode grid_connected" in text.stdout and "devices: 8/8 ok" in text.stdout
    assert "gridctl run" in out  # the live panel was drawn
    with Ledger(tmp_path / "var" / "misono" / "ledger.sqlite") as ledger:
        assert ledger.state_get("daemon.controller_state") is not None
        assert ledger.outbox_backlog()[0] > 0  # telemetry queued


def test_run_with_a_bad_config_says_where_in_one_line(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text("site: {id: x}\nnodes: []\n", encoding="utf-8")
    result = subprocess.run(CLI + ["run", str(bad), "--duration", "1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and str(bad) in result.stderr
