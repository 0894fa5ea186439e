"""Fixtures of the daemon's cycle-table tests.

The cycle tables drive the real daemon, the real controller core, the real optimizer and a real
SQLite ledger, with a manual clock. The devices here are scripted stand-ins for the drivers:
a cycle table must put a disconnect, garbage or a grid loss at an exact cycle, which a real
server cannot be made to do deterministically. The same faults against real emulators on
loopback are in ``tests/faults``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.capabilities import DeviceReading, EnergyCounters, GridState, LegReading
from drivers.errors import TransientDeviceError
from gridctl.config import BatteryDevice, MeterDevice, PvInverterDevice, RouterDevice, load_site
from gridctl.daemon import ManualClock, build_daemon

REPO = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 8, 3, 2, 0, 5, tzinfo=dt.UTC)  # 11:00:05 JST, a summer weekday


@dataclass
class Plant:
    """Shared scripted state of the block: what the stand-in devices report."""

    clock: ManualClock
    grid_connected: bool = True
    grid_voltage_v: float = 202.0
    failing: set[str] = field(default_factory=set)
    garbage: set[str] = field(default_factory=set)
    hanging: set[str] = field(default_factory=set)
    stuck_release: bool = False  # releasing control (None) never answers: a slow shutdown
    writes: list[tuple[str, str, float | None]] = field(default_factory=list)
    heartbeats: dict[str, int] = field(default_factory=dict)
    started_s: float = 0.0

    def hours(self) -> float:
        """Hours of wall time since START: counters grow with it, also across restarts."""
        return max(0.0, (self.clock.now() - START).total_seconds() / 3600.0)


class ScriptedDevice:
    """A driver stand-in: answers per the plant script, raises like a real driver would."""

    def __init__(self, plant: Plant, config) -> None:
        self.plant, self.config, self.name = plant, config, config.id
        self.connected = False

    def _check(self) -> None:
        if self.config.id in self.plant.failing:
            self.connected = False
            raise TransientDeviceError(self.name, "connection_refused", "connection refused")

    async def connect(self) -> None:
        self._check()
        self.connected = True

    async def close(self) -> None:
        self.connected = False

    async def read_snapshot(self) -> DeviceReading:
        self._check()
        if self.config.id in self.plant.hanging:
            await asyncio.sleep(3600)
        if self.config.id in self.plant.garbage:
            raise ValueError("register 40072 decodes to NaN")
        h, c = self.plant.hours(), self.config
        if isinstance(c, PvInverterDevice):
            return DeviceReading(ac_power_kw=0.5 * c.rating.ac_kw,
                                 counters=EnergyCounters(100 + 0.5 * c.rating.ac_kw * h, 0.0))
        if isinstance(c, BatteryDevice):
            return DeviceReading(ac_power_kw=0.0, soc_pct=55.0)
        if isinstance(c, MeterDevice):
            return DeviceReading(ac_power_kw=1.0, counters=EnergyCounters(500 + 1.0 * h, 50 + 0.2 * h))
        assert isinstance(c, RouterDevice)
        legs = {}
        for i, leg in enumerate(c.legs):
            power = {"node": -2.0, "grid": 1.0}.get(leg.kind, 0.0)
            legs[leg.id] = LegReading(leg.id, power, EnergyCounters(10 + i + 0.3 * h, 5 + 0.1 * h),
                                      leg.capacity_kw, None)
        grid = GridState(self.plant.grid_connected, self.plant.grid_voltage_v, 50.0)
        return DeviceReading(legs=legs, grid=grid)

    async def write_heartbeat(self) -> None:
        self._check()
        self.plant.heartbeats[self.name] = self.plant.heartbeats.get(self.name, 0) + 1


class ScriptedBattery(ScriptedDevice):
    async def write_battery_power_kw(self, power_kw, revert_s) -> None:
        self._check()
        if power_kw is None and self.plant.stuck_release:
            await asyncio.sleep(3600)
        self.plant.writes.append((self.name, "battery_kw", power_kw))


class ScriptedPv(ScriptedDevice):
    async def write_pv_limit_kw(self, limit_kw, revert_s) -> None:
        self._check()
        self.plant.writes.append((self.name, "pv_limit_kw", limit_kw))


class ScriptedRouter(ScriptedDevice):
    async def write_leg_power_kw(self, leg_id, power_kw) -> None:
        self._check()
        self.plant.writes.append((f"{self.name}/{leg_id}", "leg_kw", power_kw))


def scripted_factory(plant: Plant):
    kinds = {"battery": ScriptedBattery, "pv_inverter": ScriptedPv, "router": ScriptedRouter,
             "meter": ScriptedDevice}

    def factory(site, device_id):
        device = next(d for _n, d in site.all_devices() if d.id == device_id)
        return kinds[device.kind](plant, device)

    return factory


def fast_site(poll_period_s: float = 0.5, **control):
    """The Misono site with a short poll period and a small plan horizon (fast solves)."""
    site = load_site(REPO / "configs" / "misono.yaml")
    updates = {"poll_period_s": poll_period_s, "replan_period_s": 60, "horizon_h": 2.0,
               "solver_time_limit_s": 2.0, "setpoint_expiry_s": 10.0}
    updates.update(control)
    return site.model_copy(update={"control": site.control.model_copy(update=updates)})


@pytest.fixture
def plant() -> Plant:
    clock = ManualClock(START)
    return Plant(clock=clock, started_s=clock.monotonic())


@pytest.fixture
def make_daemon(tmp_path, plant):
    """``make_daemon(site=None, **kw)`` builds a daemon on the scripted plant and a temp ledger."""
    made = []

    def make(site=None, **kw):
        site = site or fast_site()
        kw.setdefault("socket_path", None)
        kw.setdefault("ledger_path", tmp_path / "ledger.sqlite")
        kw.setdefault("runtime_dir", tmp_path / "locks")  # the site lock: per test, not /run
        daemon, ledger = build_daemon(site, clock=plant.clock, factory=scripted_factory(plant), **kw)
        made.append(ledger)
        return daemon, ledger

    yield make
    for ledger in made:
        try:
            ledger.close()
        except Exception:
            pass
