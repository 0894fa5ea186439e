"""Cycle tables: the daemon with a manual clock, the real core, optimizer and ledger."""

from __future__ import annotations

import asyncio

from gridctl.controller.types import Mode, SetpointKind


def within_limits(site, report) -> list[str]:
    """Every written setpoint outside its device's ratings, as messages."""
    devices = {d.id: d for _n, d in site.all_devices()}
    bad = []
    for sp, value in report.setpoints:
        d = devices[sp.device_id]
        if sp.kind is SetpointKind.BATTERY_KW:
            ok = -d.rating.max_charge_kw - 1e-9 <= value <= d.rating.max_discharge_kw + 1e-9
        elif sp.kind is SetpointKind.PV_LIMIT_KW:
            ok = -1e-9 <= value <= d.rating.ac_kw + 1e-9
        else:
            cap = next(leg.capacity_kw for leg in d.legs if leg.id == sp.leg_id)
            ok = abs(value) <= cap + 1e-9
        if not ok:
            bad.append(f"{sp.device_id} {sp.kind.value}={value}")
    return bad


async def test_cycles_read_decide_write_and_kick_nothing_without_systemd(make_daemon, plant):
    daemon, _ledger = make_daemon()
    reports = []
    await daemon.run(duration_s=5.0, on_cycle=reports.append)
    assert len(reports) >= 10
    assert all(r.healthy for r in reports), [r.stage_faults for r in reports if not r.healthy]
    assert all(not within_limits(daemon.parts.site, r) for r in reports)
    assert any(r.setpoints for r in reports)
    assert plant.heartbeats  # every healthy device got a heartbeat
    assert daemon.cycle.state.mode is Mode.GRID_CONNECTED
