"""A slow but working device is controlled every cycle (real pymodbus server on loopback).

The emulated battery answers every Modbus request after 0.7 s; its configured timeout is
1.0 s per request. A read (two requests) or a setpoint write with its heartbeat takes longer
than one timeout in total, yet no request comes near its own timeout: the device must be read
and given setpoints every cycle, never marked unreachable, whatever the poll period.
"""

from __future__ import annotations

import asyncio

import pytest

from gridctl.config import load_site
from gridctl.daemon import build_daemon
from sim.emulators.site import build_site
from tests.faults.blocks import until
from tests.fixtures.emulators import write_site_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_ANSWER_S = 0.7
BATTERY = "home-1-battery"


async def test_battery_answering_each_request_in_0_7_s_is_controlled_every_cycle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    site = load_site(write_site_config(tmp_path, node_ids=["home-1"]))
    assert site.all_devices()[1][1].protocol.modbus.timeout_s == 1.0
    site = site.model_copy(update={"control": site.control.model_copy(update={
        "poll_period_s": 2.0, "setpoint_expiry_s": 30.0, "replan_period_s": 60, "horizon_h": 2.0,
        "socket_path": tmp_path / "gridctl.sock"})})
    emulated = build_site(site, base_dir=tmp_path)
    await emulated.start()
    daemon, ledger = build_daemon(site, ledger_path=tmp_path / "ledger.sqlite", shipper=None)
    reports: list = []
    task = asyncio.create_task(daemon.run(on_cycle=reports.append))
    try:
        await until(lambda: reports and all(v is None for v in reports[-1].device_faults.values())
                    and any(sp.device_id == BATTERY for sp, _ in reports[-1].setpoints),
                    60.0, "every device connected and the battery controlled")
        emulated.sunspec[BATTERY].faults.delay_s = SLOW_ANSWER_S
        start = len(reports) + 1  # the cycle under way may have started before the delay
        await until(lambda: len(reports) >= start + 3, 60.0, "three slow cycles")
        slow = reports[start:start + 3]
        assert [r.device_faults[BATTERY] for r in slow] == [None, None, None]
        assert all(r.written.get(BATTERY, 0) >= 1 for r in slow), [r.written for r in slow]
        assert all(any(sp.device_id == BATTERY for sp, _ in r.setpoints) for r in slow)
        assert daemon.fleet.handles[BATTERY].stats["faults"] == 0
    finally:
        daemon.stop()
        await task
        ledger.close()
        await emulated.stop()
