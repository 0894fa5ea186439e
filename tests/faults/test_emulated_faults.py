"""Faults against real emulated devices on loopback (pymodbus and secure asyncua servers).

Two Misono homes run in-process (``sim.emulators.site``) so a test can stop one device,
make it serve garbage or take the grid away, while the real daemon controls them with the
real drivers, core, optimizer and ledger. Each fault asserts: control continues within one
cycle, no setpoint leaves its device's limits, the ledger verifies.
"""

from __future__ import annotations

import datetime as dt

import pytest

from gridctl.config import load_site
from gridctl.controller.types import Mode
from tests.daemon.test_cycle_table import outside_limits
from tests.faults.blocks import fault_site, next_cycles, running_block, until
from tests.fixtures.emulators import write_site_config



@pytest.fixture
async def block(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """Homes 1 and 2 emulated, and a daemon on them (not yet running)."""
    monkeypatch.chdir(tmp_path)
    site = load_site(write_site_config(tmp_path, node_ids=["home-1", "home-2"]))
    site = fault_site(site, tmp_path, reconnect_delay_s=3)
    async with running_block(site, tmp_path) as (emulated, daemon, reports):
        yield site, emulated, daemon, reports


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
