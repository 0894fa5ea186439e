"""Faults against real emulated devices on loopback (pymodbus and secure asyncua servers).

Two Misono homes run in-process (``sim.emulators.site``) so a test can stop one device,
make it serve garbage or take the grid away, while the real daemon controls them with the
real drivers, core, optimizer and ledger. Each fault asserts: control continues within one
cycle, no setpoint leaves its device's limits, the ledger verifies.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gridctl.config import load_site
from gridctl.controller.types import Mode
from gridctl.daemon import build_daemon
from gridctl.ledger.verify import verify_ledger
from sim.emulators.site import build_site
from tests.daemon.test_cycle_table import outside_limits
from tests.fixtures.emulators import write_site_config

POLL_S = 0.5


@pytest.fixture
async def block(tmp_path, monkeypatch):
    """Homes 1 and 2 emulated, and a daemon on them (not yet running)."""
    monkeypatch.chdir(tmp_path)
    path = write_site_config(tmp_path, node_ids=["home-1", "home-2"])
    site = load_site(path)
    site = site.model_copy(update={
        "control": site.control.model_copy(update={
            "poll_period_s": POLL_S, "setpoint_expiry_s": 5.0, "replan_period_s": 30,
            "horizon_h": 2.0, "socket_path": tmp_path / "gridctl.sock"}),
        "islanding": site.islanding.model_copy(update={"reconnect_delay_s": 3})})
    emulated = build_site(site, base_dir=tmp_path)
    await emulated.start()
    daemon, ledger = build_daemon(site, ledger_path=tmp_path / "ledger.sqlite", shipper=None)
    reports = []
    task = asyncio.create_task(daemon.run(on_cycle=reports.append))
    try:
        await until(lambda: reports and all(v is None for v in reports[-1].device_faults.values()),
                    60.0, "every device connected")
        yield site, emulated, daemon, reports
    finally:
        daemon.stop()
        await task
        assert verify_ledger(ledger).ok
        ledger.close()
        await emulated.stop()


async def until(condition, timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def next_cycles(reports: list, n: int) -> list:
    start = len(reports)
    await until(lambda: len(reports) >= start + n, 30.0 + n * POLL_S * 4, f"{n} cycles")
    return reports[start:start + n]


@pytest.mark.slow
async def test_device_disconnect_garbage_and_grid_loss(block):
    site, emulated, daemon, reports = block
    battery = emulated.sunspec["home-1-battery"]

    # A device disconnects: faulted in the next cycle, the others still controlled.
    await battery.stop()
    after = await next_cycles(reports, 3)
    assert after[-1].device_faults["home-1-battery"] is not None
    assert all(r.healthy for r in after)
    assert any(sp.device_id == "home-2-battery" for r in after for sp, _v in r.setpoints)
    assert not any(sp.device_id == "home-1-battery" for sp, _v in after[-1].setpoints)

    # ... and returns: reconnected after its backoff, controlled again.
    await battery.start()
    await until(lambda: reports[-1].device_faults["home-1-battery"] is None, 30.0, "battery back")
    back = await next_cycles(reports, 2)
    assert any(sp.device_id == "home-1-battery" for sp, _v in back[-1].setpoints)

    # A device serves garbage: dropped values, never passed on; control goes on.
    meter = emulated.sunspec["home-2-meter"]
    meter.faults.garbage = True
    garbage = await next_cycles(reports, 4)
    meter.faults.garbage = False
    assert all(r.healthy and r.decision is not None for r in garbage)

    # The grid is lost: island within one cycle; restored: reconnect after the delay.
    emulated.set_grid_connected(False)
    await next_cycles(reports, 2)  # the cycle in flight may have read the grid before the loss
    assert daemon.cycle.state.mode is Mode.ISLANDED
    islanded = await next_cycles(reports, 3)
    assert all(r.decision.setpoints.grid_tie_open for r in islanded)
    emulated.set_grid_connected(True)
    await until(lambda: daemon.cycle.state.mode is Mode.GRID_CONNECTED, 30.0, "reconnected")
    moves = [(a, b) for _t, a, b, _n in daemon.cycle.transitions]
    assert moves == [("grid_connected", "islanded"), ("islanded", "reconnecting"),
                     ("reconnecting", "grid_connected")]
    assert not [b for r in reports for b in outside_limits(site, r)]
    assert all(r.healthy for r in reports)
    last = reports[-1].at_utc
    assert dt.datetime.now(dt.UTC) - last < dt.timedelta(seconds=5)
