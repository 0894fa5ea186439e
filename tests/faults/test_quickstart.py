"""The main-job quick start: ``gridctl run CONFIG --emulate --live`` and ``gridctl status``.

Real processes all the way: the CLI starts ``gridctl emulate`` as its child, the daemon
controls the emulated devices, and ``gridctl status`` reads the running daemon's socket.
"""

from __future__ import annotations

import datetime as dt
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
    assert "gridctl run" in out and "P2P links" in out  # the live panel was drawn
    assert_status_document_consistent(status)
    # Log noise: asyncua's session-timeout notice is filtered, a first connection is no
    # "healthy again".
    assert "Requested session timeout" not in out + err
    assert "healthy again" not in out
    with Ledger(tmp_path / "var" / "misono" / "ledger.sqlite") as ledger:
        assert ledger.state_get("daemon.controller_state") is not None
        # No InfluxDB in this site: no telemetry is queued for nobody.
        assert not [line for _id, line in ledger.outbox_peek(100_000) if line.startswith("telemetry")]


def assert_status_document_consistent(status: dict) -> None:
    """Members, totals, links, plan targets and settlement agree with each other."""
    members = status["members"]
    assert set(members) == {"home-1", "home-2"}
    for name, m in members.items():
        assert m["devices_ok"] == m["devices"] == 4 and not m["faults"], name
        assert m["pv_kw"] >= 0 and m["load_kw"] >= 0 and 0 <= m["soc_pct"] <= 100, name
        # supply-positive balance with the P2P inflow over the router links, within poll skew
        gap_kw = m["pv_kw"] + m["grid_kw"] + m["battery_kw"] + m["p2p_in_kw"] - m["load_kw"]
        assert abs(gap_kw) < 0.25 + 0.05 * m["load_kw"], (name, m)
        target = m["target"]
        assert target is not None and -5.0 - 1e-6 <= target["battery_kw"] <= 5.0 + 1e-6, (name, m)
    for key in ("pv_kw", "load_kw", "battery_kw", "grid_kw", "p2p_in_kw"):
        assert abs(status["totals"][key] - sum(m[key] for m in members.values())) < 0.01, key
    (link,) = status["links"]
    assert (link["from_node"], link["to_node"]) == ("home-1", "home-2")
    flow_kw = link["flow_kw"]
    a_in, b_in = members["home-1"]["p2p_in_kw"], members["home-2"]["p2p_in_kw"]
    assert abs(a_in + flow_kw) <= 0.03 * abs(flow_kw) + 0.01  # home-1's end of the link
    assert b_in * flow_kw >= 0 and abs(b_in) <= abs(flow_kw) + 0.01  # arrives, less losses
    if abs(flow_kw) > 0.0005:
        assert link["direction"] == ("home-1->home-2" if flow_kw > 0 else "home-2->home-1")
    settlement = status["settlement"]
    open_start = dt.datetime.fromisoformat(settlement["open_start_utc"])
    assert open_start.minute in (0, 30) and open_start.second == 0
    assert dt.datetime.fromisoformat(settlement["next_settlement_utc"]) - open_start >= \
        dt.timedelta(minutes=30)
    assert status["transitions"] == [] and status["plan"]["step_start_utc"] is not None


def test_run_with_a_bad_config_says_where_in_one_line(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text("site: {id: x}\nnodes: []\n", encoding="utf-8")
    result = subprocess.run(CLI + ["run", str(bad), "--duration", "1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and str(bad) in result.stderr


def test_emulate_refuses_a_port_already_in_use(tmp_path):
    import socket as socketlib

    from gridctl.config import load_site
    from gridctl.cli.emulate_launcher import EmulationError, device_addresses, start_emulators

    config = write_site_config(tmp_path, node_ids=["home-1"])
    site = load_site(config)
    device_id, host, port = device_addresses(site)[0]
    with socketlib.socket() as squatter:  # a leftover emulator still holding a device port
        squatter.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_REUSEADDR, 1)
        squatter.bind((host, port))
        squatter.listen()
        with pytest.raises(EmulationError, match=f"{device_id}: port .*:{port} is already in use"):
            start_emulators(config, site, timeout_s=5.0)
