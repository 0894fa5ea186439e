"""ECHONET Lite device objects backed by ``sim.plant`` physics, for :class:`EchonetNode`.

PV (0x0279), storage battery (0x027D), low-voltage smart meter (0x0288) and switch (0x05FD)
objects. Each holds the same :class:`~sim.emulators.sunspec_server.DevicePhysics` the SunSpec
emulators use and offers the same coupling hooks: ``.physics`` (plant state), ``.advance()``
(step the plant to the current simulated time) and ``.now_s()``; a node model can read
``obj.physics.pv.power_kw`` etc. and feed ``physics.available_pv_kw`` / ``meter_power_kw``.
``.object`` is the :class:`EmulatedObject` to host on a node.

Values on the wire follow the specification: battery 0xD3 is charging-positive, meter 0xE7
import-positive; the node's ``wrong_sign`` knob negates both. ECHONET setpoints have no
revert timer: a mode or limit holds until changed or until the device reboots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from drivers.echonet.frame import Eoj
from drivers.echonet.knowledge import Value, decode_value, encode_value
from sim.emulators.echonet_node import EchonetNode, EmulatedObject, EmulatedProperty
from sim.emulators.sunspec_server import DevicePhysics
from sim.plant.devices import step_battery, step_counters, step_pv

JST = ZoneInfo("Asia/Tokyo")
_HALF_HOUR_S = 1800.0
_NO_DATA_U32 = 0xFFFFFFFE


class PlantClock:
    """Simulated time shared by the objects of a site: ``time_scale`` sim s per wall s.

    ``epoch0_s`` is the UNIX time [s] at simulated time 0 (the meter's calendar).
    """

    def __init__(self, time_scale: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 epoch0_s: float | None = None) -> None:
        self.time_scale = time_scale
        self._clock = clock
        self._t0 = clock()
        self.epoch0_s = time.time() if epoch0_s is None else epoch0_s

    def now_s(self) -> float:
        """Simulated seconds since start."""
        return (self._clock() - self._t0) * self.time_scale

    def epoch_s(self, sim_s: float) -> float:
        return self.epoch0_s + sim_s


class _DeviceObject:
    """Common part: the plant, its clock, the EPC table and the super-class properties."""

    CLASS_CODE = 0x05FD

    def __init__(self, physics: DevicePhysics, *, instance: int = 1, maker_code: int = 0x000000,
                 clock: PlantClock | None = None) -> None:
        self.physics = physics
        self.clock = clock or PlantClock()
        self.maker_code = maker_code
        self.operation_on = True
        self.fault = False
        self._last_s = self.clock.now_s()
        self.object = EmulatedObject(Eoj.of(self.CLASS_CODE, instance), self._properties(),
                                     self._signed_epcs(), self.reboot)

    def now_s(self) -> float:
        return self.clock.now_s()

    def advance(self) -> None:
        """Step the plant to the current simulated time."""
        now = self.now_s()
        dt = now - self._last_s
        if dt > 0:
            self._last_s = now
            self._step(now, dt)

    def _step(self, now_s: float, dt_s: float) -> None:
        """Kind-specific physics step."""

    def reboot(self) -> None:
        """Back to power-on defaults (operation on, no setpoints)."""
        self.operation_on = True

    def _signed_epcs(self) -> frozenset[int]:
        return frozenset()

    # ---- property helpers --------------------------------------------------------------------

    def _enc(self, epc: int, value: Value) -> bytes:
        return encode_value(self.CLASS_CODE, epc, value)

    def _dec(self, epc: int, edt: bytes) -> Value:
        return decode_value(self.CLASS_CODE, epc, edt)

    def _ro(self, epc: int, read: Callable[[], Value], announce: bool = False) -> EmulatedProperty:
        def getter() -> bytes:
            self.advance()
            return self._enc(epc, read())
        return EmulatedProperty(getter=getter, announce=announce)

    def _rw(self, epc: int, read: Callable[[], Value], write: Callable[[Value], bool],
            announce: bool = False) -> EmulatedProperty:
        prop = self._ro(epc, read, announce)

        def setter(edt: bytes) -> bool:
            self.advance()
            return write(self._dec(epc, edt))
        prop.setter = setter
        return prop

    def _set_operation(self, value: Value) -> bool:
        self.operation_on = value == "on"
        return True

    def _super_properties(self) -> dict[int, EmulatedProperty]:
        return {
            0x80: self._rw(0x80, lambda: "on" if self.operation_on else "off",
                           self._set_operation, announce=True),
            0x81: EmulatedProperty(getter=lambda: b"\x00"),
            0x82: EmulatedProperty(getter=lambda: bytes((0, 0, ord("R"), 0))),
            0x88: self._ro(0x88, lambda: "fault" if self.fault else "no_fault", announce=True),
            0x8A: self._ro(0x8A, lambda: self.maker_code),
            0x8C: self._ro(0x8C, lambda: "GRIDCTL-EMU"),
            0x8D: self._ro(0x8D, lambda: f"EMU{self.object.eoj}"),
        }

    def _properties(self) -> dict[int, EmulatedProperty]:
        return self._super_properties()


class EchonetPvObject(_DeviceObject):
    """Household solar power generation (0x0279) on a ``DevicePhysics(kind="pv")``.

    Curtailment: 0xA0 [%] of rated or 0xA1 [W] (and their generation-limit twins 0xE5/0xE6).
    ``sold_kwh`` optionally feeds 0xE3 (cumulative sold energy) from the node's meter.
    """

    CLASS_CODE = 0x0279

    def __init__(self, physics: DevicePhysics, *, sold_kwh: Callable[[], float] | None = None,
                 **kwargs) -> None:
        self.sold_kwh = sold_kwh
        self.limit_pct = 100
        self.limit_w = 0xFFFD
        super().__init__(physics, **kwargs)

    @property
    def rated_w(self) -> int:
        assert self.physics.pv_spec is not None
        return round(self.physics.pv_spec.rated_kw * 1000.0)

    def _limit_kw(self) -> float | None:
        if not self.operation_on:
            return 0.0
        limits = [self.limit_pct / 100.0 * self.rated_w / 1000.0, self.limit_w / 1000.0]
        limit = min(limits)
        return None if limit >= self.rated_w / 1000.0 else limit

    def _step(self, now_s: float, dt_s: float) -> None:
        p = self.physics
        assert p.pv is not None and p.pv_spec is not None
        p.pv = step_pv(p.pv_spec, p.pv, p.available_pv_kw(now_s), self._limit_kw(), dt_s)

    def _set_pct(self, value: Value) -> bool:
        if not isinstance(value, int) or not 0 <= value <= 100:
            return False
        self.limit_pct = value
        return True

    def _set_w(self, value: Value) -> bool:
        if not isinstance(value, int):
            return False
        self.limit_w = value
        return True

    def reboot(self) -> None:
        super().reboot()
        self.limit_pct, self.limit_w = 100, 0xFFFD

    def _properties(self) -> dict[int, EmulatedProperty]:
        pv = lambda: self.physics.pv  # noqa: E731
        props = {
            **self._super_properties(),
            0xA0: self._rw(0xA0, lambda: self.limit_pct, self._set_pct),
            0xA1: self._rw(0xA1, lambda: self.limit_w, self._set_w),
            0xE5: self._rw(0xE5, lambda: self.limit_pct, self._set_pct),
            0xE6: self._rw(0xE6, lambda: self.limit_w, self._set_w),
            0xE0: self._ro(0xE0, lambda: min(round(pv().power_kw * 1000.0), 0xFFFD)),
            0xE1: self._ro(0xE1, lambda: pv().produced_kwh),
            0xE8: self._ro(0xE8, lambda: self.rated_w),
        }
        if self.sold_kwh is not None:
            sold = self.sold_kwh
            props[0xE3] = self._ro(0xE3, lambda: sold())
        return props


class EchonetBatteryObject(_DeviceObject):
    """Storage battery (0x027D) on a ``DevicePhysics(kind="battery")``.

    0xDA mode: charging at 0xEB [W], discharging at 0xEC [W], standby, or auto, where the
    battery follows ``auto_kw(sim_s)`` [kW, discharge positive] (the home's own control;
    default idle). Power-on default: auto, no power settings.
    """

    CLASS_CODE = 0x027D

    def __init__(self, physics: DevicePhysics, *,
                 auto_kw: Callable[[float], float] = lambda _t: 0.0, **kwargs) -> None:
        self.auto_kw = auto_kw
        self.mode = "auto"
        self.charge_w = 0
        self.discharge_w = 0
        super().__init__(physics, **kwargs)

    def _command_kw(self, now_s: float) -> float:
        if not self.operation_on or self.mode == "standby":
            return 0.0
        if self.mode == "charging":
            return -self.charge_w / 1000.0
        if self.mode == "discharging":
            return self.discharge_w / 1000.0
        return self.auto_kw(now_s)

    def _step(self, now_s: float, dt_s: float) -> None:
        p = self.physics
        assert p.battery is not None and p.battery_spec is not None
        p.battery = step_battery(p.battery_spec, p.battery, self._command_kw(now_s), dt_s)

    def _set_mode(self, value: Value) -> bool:
        if value not in ("charging", "discharging", "standby", "auto"):
            return False
        self.mode = str(value)
        return True

    def _setter(self, attr: str) -> Callable[[Value], bool]:
        def write(value: Value) -> bool:
            if not isinstance(value, int) or value < 0:
                return False
            setattr(self, attr, value)
            return True
        return write

    def reboot(self) -> None:
        super().reboot()
        self.mode, self.charge_w, self.discharge_w = "auto", 0, 0

    def _signed_epcs(self) -> frozenset[int]:
        return frozenset({0xD3})

    def _working_status(self) -> str:
        power = self.physics.battery.power_kw if self.physics.battery else 0.0
        if abs(power) < 1e-6:
            return "standby"
        return "discharging" if power > 0 else "charging"

    def _properties(self) -> dict[int, EmulatedProperty]:
        bat = lambda: self.physics.battery  # noqa: E731
        spec = lambda: self.physics.battery_spec  # noqa: E731
        wh = lambda kwh: max(0, round(kwh * 1000.0))  # noqa: E731
        floor = lambda: spec().capacity_kwh * spec().soc_min_pct / 100.0  # noqa: E731
        ceil = lambda: spec().capacity_kwh * spec().soc_max_pct / 100.0  # noqa: E731
        return {
            **self._super_properties(),
            0xA0: self._ro(0xA0, lambda: wh(spec().capacity_kwh)),
            0xA1: self._ro(0xA1, lambda: wh(spec().capacity_kwh)),
            0xA4: self._ro(0xA4, lambda: wh(ceil() - bat().stored_kwh)),
            0xA5: self._ro(0xA5, lambda: wh(bat().stored_kwh - floor())),
            0xA8: self._ro(0xA8, lambda: bat().charged_kwh),
            0xA9: self._ro(0xA9, lambda: bat().discharged_kwh),
            0xCE: self._rw(0xCE, lambda: "permitted", lambda v: v in ("permitted", "prohibited")),
            0xCF: self._ro(0xCF, self._working_status, announce=True),
            # charging-positive on the wire (the specification's sign)
            0xD3: self._ro(0xD3, lambda: -round(bat().power_kw * 1000.0)),
            0xDA: self._rw(0xDA, lambda: self.mode, self._set_mode, announce=True),
            0xE2: self._ro(0xE2, lambda: wh(bat().stored_kwh)),
            0xE4: self._ro(0xE4, lambda: round(bat().soc_pct(spec()))),
            0xE6: self._ro(0xE6, lambda: "lithium_ion"),
            0xEB: self._rw(0xEB, lambda: self.charge_w, self._setter("charge_w")),
            0xEC: self._rw(0xEC, lambda: self.discharge_w, self._setter("discharge_w")),
        }


class EchonetMeterObject(_DeviceObject):
    """Low-voltage smart electric energy meter (0x0288) on a ``DevicePhysics(kind="meter")``.

    Live power 0xE7 [W] (import positive) from ``physics.meter_power_kw``; cumulative counts
    0xE0/0xE3 = kWh / (coefficient x unit); at every :00 and :30 (JST, the plant clock's
    calendar) the counts are frozen into 0xEA/0xEB with their time and into the day's 48
    half-hour slots of the histories 0xE2/0xE4 (day chosen by 0xE5).
    """

    CLASS_CODE = 0x0288

    def __init__(self, physics: DevicePhysics, *, coefficient: int = 1, unit_code: int = 0x01,
                 **kwargs) -> None:
        self.coefficient = coefficient
        self.unit_code = unit_code
        self.history_day = 0
        self.fixed: tuple[datetime, int, int] | None = None
        self.history: dict[date, list[tuple[int, int]]] = {}
        super().__init__(physics, **kwargs)
        self._freeze(self._last_s)

    @property
    def kwh_per_count(self) -> float:
        unit = decode_value(0x0288, 0xE1, bytes((self.unit_code,)))
        return self.coefficient * float(unit)

    def _counts(self, kwh: float) -> int:
        return int(kwh / self.kwh_per_count + 1e-9) % 100_000_000

    def _step(self, now_s: float, dt_s: float) -> None:
        """Step to each :00/:30 boundary in (last, now], freeze it, then to ``now_s``."""
        start = now_s - dt_s
        t = start
        while True:
            epoch = self.clock.epoch_s(t)
            boundary_s = t + (_HALF_HOUR_S - epoch % _HALF_HOUR_S)
            if boundary_s > now_s:
                break
            self._meter_step(boundary_s, boundary_s - t)
            t = boundary_s
            self._freeze(t)
        self._meter_step(now_s, now_s - t)

    def _meter_step(self, at_s: float, dt_s: float) -> None:
        p = self.physics
        assert p.meter is not None
        if dt_s > 0:
            p.meter = step_counters(p.meter, p.meter_power_kw(at_s), dt_s)

    def _freeze(self, sim_s: float) -> None:
        epoch = self.clock.epoch_s(sim_s)
        point = epoch - epoch % _HALF_HOUR_S
        local = datetime.fromtimestamp(point, UTC).astimezone(JST).replace(tzinfo=None)
        meter = self.physics.meter
        assert meter is not None
        forward, reverse = self._counts(meter.import_kwh), self._counts(meter.export_kwh)
        self.fixed = (local, forward, reverse)
        slots = self.history.setdefault(local.date(),
                                        [(_NO_DATA_U32, _NO_DATA_U32)] * 48)
        slots[local.hour * 2 + local.minute // 30] = (forward, reverse)
        for old in [d for d in self.history if d < local.date() - timedelta(days=99)]:
            del self.history[old]

    def _history(self, index: int) -> tuple:
        today = datetime.fromtimestamp(self.clock.epoch_s(self.now_s()), JST).date()
        day = today - timedelta(days=self.history_day)
        slots = self.history.get(day, [(_NO_DATA_U32, _NO_DATA_U32)] * 48)
        return (self.history_day, tuple(s[index] for s in slots))

    def _set_day(self, value: Value) -> bool:
        if not isinstance(value, int) or not 0 <= value <= 99:
            return False
        self.history_day = value
        return True

    def _signed_epcs(self) -> frozenset[int]:
        return frozenset({0xE7})

    def _properties(self) -> dict[int, EmulatedProperty]:
        meter = lambda: self.physics.meter  # noqa: E731
        fixed = lambda: self.fixed  # noqa: E731
        return {
            **self._super_properties(),
            0xD3: self._ro(0xD3, lambda: self.coefficient),
            0xD7: self._ro(0xD7, lambda: 8),
            0xE0: self._ro(0xE0, lambda: self._counts(meter().import_kwh)),
            0xE1: EmulatedProperty(getter=lambda: bytes((self.unit_code,))),
            0xE2: self._ro(0xE2, lambda: self._history(0)),
            0xE3: self._ro(0xE3, lambda: self._counts(meter().export_kwh)),
            0xE4: self._ro(0xE4, lambda: self._history(1)),
            0xE5: self._rw(0xE5, lambda: self.history_day, self._set_day),
            0xE7: self._ro(0xE7, lambda: round(meter().power_kw * 1000.0)),
            0xEA: self._ro(0xEA, lambda: (fixed()[0], fixed()[1]), announce=True),
            0xEB: self._ro(0xEB, lambda: (fixed()[0], fixed()[2]), announce=True),
        }

    def advance(self) -> None:
        """Step the meter, sampling ``physics.meter_power_kw`` at the current time."""
        super().advance()
        meter = self.physics.meter
        if meter is not None:  # live power even when no time passed since the last step
            self.physics.meter = replace(meter, power_kw=self.physics.meter_power_kw(self._last_s))


class EchonetSwitchObject(_DeviceObject):
    """A load switch (0x05FD, JEM-A/HA terminal) switched through 0x80.

    ``default_on`` is the power-on state (a reboot returns to it); ``stuck`` makes the switch
    acknowledge sets without switching (a relay that does not obey); ``on_change`` is called
    with the new state so a node model can drop or restore the circuit's load.
    """

    CLASS_CODE = 0x05FD

    def __init__(self, *, default_on: bool = True,
                 on_change: Callable[[bool], None] | None = None, **kwargs) -> None:
        self.default_on = default_on
        self.on_change = on_change
        self.stuck = False
        super().__init__(DevicePhysics(kind="switch"), **kwargs)
        self.operation_on = default_on

    @property
    def is_on(self) -> bool:
        """True while the circuit is connected."""
        return self.operation_on

    def _set_operation(self, value: Value) -> bool:
        if value not in ("on", "off"):
            return False
        if not self.stuck and (value == "on") != self.operation_on:
            self.operation_on = value == "on"
            if self.on_change is not None:
                self.on_change(self.operation_on)
        return True

    def reboot(self) -> None:
        changed = self.operation_on != self.default_on
        self.operation_on = self.default_on
        if changed and self.on_change is not None:
            self.on_change(self.operation_on)


def echonet_node(host: str, port: int, *objects: _DeviceObject, maker_code: int = 0) -> EchonetNode:
    """A node hosting the given device objects (not started)."""
    return EchonetNode(host, port, [o.object for o in objects], maker_code=maker_code)
