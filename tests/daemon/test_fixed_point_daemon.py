"""The daemon settles a home with an ECHONET Lite smart meter from the meter's fixed counters.

The real daemon (its fleet, cycle, recorder and a real SQLite ledger) runs the Misono block
with home-1's grid meter turned into a B-route smart meter (profile
generic-echonet-smart-meter); the scripted meter publishes each fixed 30-minute point 50 s
after it, as real meters do, and later stops publishing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

from drivers.capabilities import DeviceReading, FixedPointCounters
from gridctl.config import load_site
from gridctl.daemon import build_daemon
from gridctl.settlement.model import CounterSource, counter_kwh

from .conftest import REPO, START, ScriptedDevice, scripted_factory
from .test_cycle_table import assert_periods_contiguous, run_cycles

SUNSPEC_METER = """      - id: home-1-meter
        kind: meter
        profile: generic-sunspec-meter
        role: grid
        protocol:
          modbus: {host: 127.0.0.1, port: 15023, unit_id: 1, base_address: 40000, timeout_s: 1.0}
"""
SMART_METER = """      - id: home-1-meter
        kind: meter
        profile: generic-echonet-smart-meter
        role: grid
        protocol:
          echonet: {host: 127.0.0.11, port: 3610, instance: 1, timeout_s: 1.0}
"""
PUBLISHED_AFTER = dt.timedelta(seconds=50)
PERIOD = dt.timedelta(minutes=30)


def _site(tmp_path):
    text = (REPO / "configs" / "misono.yaml").read_text()
    assert SUNSPEC_METER in text
    text = text.replace(SUNSPEC_METER, SMART_METER).replace(
        "device_profiles_dir: devices", f"device_profiles_dir: {REPO / 'configs' / 'devices'}")
    (tmp_path / "site.yaml").write_text(text)
    site = load_site(tmp_path / "site.yaml")
    control = site.control.model_copy(update={
        "poll_period_s": 10.0, "replan_period_s": 600, "horizon_h": 2.0,
        "solver_time_limit_s": 2.0, "setpoint_expiry_s": 30.0})
    return site.model_copy(update={"control": control})


def _import_kwh(at: dt.datetime) -> float:
    """What the scripted meters count as imported at ``at`` (conftest: 500 + 1 kWh per hour)."""
    return 500 + max(0.0, (at - START).total_seconds() / 3600.0)


class SmartMeter(ScriptedDevice):
    """The scripted meter plus 0xEA/0xEB: the last fixed point, published 50 s after it;
    ``frozen_at`` stops the publishing (the meter keeps showing that point)."""

    frozen_at: dt.datetime | None = None

    async def read_snapshot(self) -> DeviceReading:
        reading = await super().read_snapshot()
        now = self.plant.clock.now()
        point = now - PUBLISHED_AFTER
        point = point.replace(minute=point.minute - point.minute % 30, second=0, microsecond=0)
        if SmartMeter.frozen_at is not None:
            point = min(point, SmartMeter.frozen_at)
        fixed = FixedPointCounters(point, _import_kwh(point), 50.0)
        return dataclasses.replace(reading, fixed_counters=fixed)


def _factory(plant):
    scripted = scripted_factory(plant)

    def factory(site, device_id):
        if device_id == "home-1-meter":
            return SmartMeter(plant, next(d for _n, d in site.all_devices() if d.id == device_id))
        return scripted(site, device_id)

    return factory


async def test_fixed_points_settle_home_1_and_a_silent_meter_falls_back_with_a_flag(plant, tmp_path):
    site = _site(tmp_path)
    SmartMeter.frozen_at = None
    daemon, ledger = build_daemon(site, clock=plant.clock, factory=_factory(plant), socket_path=None,
                                  ledger_path=tmp_path / "ledger.sqlite", runtime_dir=tmp_path / "locks")
    assert daemon.cycle.recorder.fixed_keys == {"home-1|grid"}
    reports = await run_cycles(daemon, 6 * 69)  # 02:00:05 -> 03:09 UTC: two periods closed
    t1 = START.replace(second=0) + PERIOD  # 02:30
    SmartMeter.frozen_at = t1 + PERIOD  # 03:00 is the last point the meter will publish
    reports += await run_cycles(daemon, 6 * 30)  # -> 03:39: 03:00-03:30 closes without 03:30
    assert all(r.healthy for r in reports)  # a meter without fixed points never stops control
    assert_periods_contiguous(ledger)
    by_start = {s.start_utc: (s, ledger.readings(s.start_utc, rev)) for s, rev in ledger.settlements()}
    assert sorted(by_start) == [t1 - PERIOD, t1, t1 + PERIOD]
    settlement, readings = by_start[t1]  # 02:30-03:00: both ends from fixed points
    grid = readings.channel("home-1", "grid")
    assert (grid.start_source, grid.end_source) == (CounterSource.FIXED_POINT,) * 2
    assert grid.start_import_kwh == counter_kwh(_import_kwh(t1))  # exact, not a poll 5 s later
    assert grid.end_import_kwh == counter_kwh(_import_kwh(t1 + PERIOD))
    assert grid.deltas_kwh()[0] == D("0.5")
    assert readings.channel("home-2", "grid").end_source is None  # a SunSpec meter: live
    assert not [f for f in settlement.flags if f.startswith("fixed_point_missing")]
    settlement, readings = by_start[t1 + PERIOD]  # 03:00-03:30: the 03:30 point never came
    grid = readings.channel("home-1", "grid")
    assert (grid.start_source, grid.end_source) == (CounterSource.FIXED_POINT, CounterSource.LIVE_FALLBACK)
    assert grid.end_import_kwh > counter_kwh(_import_kwh(t1 + 2 * PERIOD))  # the first live poll after
    assert "fixed_point_missing:home-1" in settlement.flags
    settled_at = [r for r in reports if r.settled]
    assert len(settled_at) == 3
    ledger.close()
