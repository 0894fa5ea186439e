"""Capability interfaces of devices, with units, and the values they exchange.

A device driver implements only the protocols it can honour; callers test with
``isinstance(driver, WritesBatteryPower)`` (all protocols are runtime-checkable).

Sign convention (supply-positive, the same everywhere in gridctl): a power is positive when the
device supplies the site: PV output, battery discharge, grid import. A router leg's power is
positive when power flows from the leg into the router.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class EnergyCounters:
    """Cumulative energy counters of one device port.

    Attributes
    ----------
    supplied_kwh : float or None
        Energy counted while the supply-positive power was > 0 [kWh]: PV production, battery
        discharge, grid import, a router leg's inflow. None when the device does not report it.
    absorbed_kwh : float or None
        Energy counted while the supply-positive power was < 0 [kWh]: battery charge, grid
        export, a router leg's outflow. None when the device does not report it.
    """

    supplied_kwh: float | None
    absorbed_kwh: float | None


@dataclass(frozen=True)
class FixedPointCounters:
    """Cumulative energy counters as a meter froze them at its last fixed metering point.

    A Japanese low-voltage smart meter (ECHONET Lite 0x0288, EPC 0xEA/0xEB) keeps the
    cumulative forward and reverse energy at every fixed 30-minute point (:00 and :30) with
    the point's time; these, not a live sample taken some seconds off the boundary, are the
    utility's billing values and become gridctl's settlement source where a node has them.

    Attributes
    ----------
    at_utc : datetime
        The fixed point the counters belong to (tz-aware, UTC), on a 30-minute boundary.
    supplied_kwh : float or None
        Cumulative energy supplied to the site at that point (grid import, forward) [kWh].
    absorbed_kwh : float or None
        Cumulative energy absorbed from the site at that point (grid export, reverse) [kWh].
    """

    at_utc: datetime
    supplied_kwh: float | None
    absorbed_kwh: float | None


@dataclass(frozen=True)
class SwitchState:
    """One channel of a load switch (relay board output or ECHONET Lite object).

    Attributes
    ----------
    channel : int
        Channel number on the device, from 0 (an ECHONET Lite switch object has channel 0).
    commanded_on : bool or None
        The state the device holds as commanded (a relay coil, an ECHONET 0x80 set value): True
        when the circuit is commanded connected (served). None when the device cannot tell.
        A board that rebooted shows its power-on default here, not what gridctl wrote.
    feedback_on : bool or None
        The state the device measures (a contactor's auxiliary contact on a discrete input):
        True when the circuit is actually connected. None without feedback.
    """

    channel: int
    commanded_on: bool | None
    feedback_on: bool | None


@dataclass(frozen=True)
class GridState:
    """State of the grid connection as a device sees it.

    Attributes
    ----------
    connected : bool or None
        True when the device is tied to the utility grid; False when islanded or disconnected.
    voltage_v : float or None
        Grid (line) voltage [V].
    frequency_hz : float or None
        Grid frequency [Hz].
    """

    connected: bool | None
    voltage_v: float | None
    frequency_hz: float | None


@dataclass(frozen=True)
class DeviceIdentity:
    """Identity reported by a device (SunSpec common model or router identity)."""

    manufacturer: str | None
    model: str | None
    serial: str | None
    version: str | None = None


@dataclass(frozen=True)
class LegReading:
    """One router leg.

    Attributes
    ----------
    leg_id : str
        Leg name in the router information model (``grid``, ``node``, ``pv``, ``battery``,
        ``link-<peer>``).
    power_kw : float or None
        Power from the leg into the router [kW], positive into the router.
    counters : EnergyCounters
        ``supplied_kwh`` counts inflow into the router, ``absorbed_kwh`` outflow [kWh].
    limit_kw : float or None
        Rated power limit of the leg [kW], magnitude.
    setpoint_kw : float or None
        Current power setpoint of the leg [kW], positive into the router; None if not set.
    """

    leg_id: str
    power_kw: float | None
    counters: EnergyCounters
    limit_kw: float | None
    setpoint_kw: float | None


@dataclass(frozen=True)
class DeviceReading:
    """One consistent read of everything a device reports, taken in one poll.

    Fields a device cannot report are None. Powers are supply-positive [kW].

    Attributes
    ----------
    ac_power_kw : float or None
        AC power at the device terminals [kW], positive supplying the site.
    counters : EnergyCounters or None
        Cumulative energy counters [kWh].
    soc_pct : float or None
        Battery state of charge [%].
    grid : GridState or None
        Grid state as seen by the device.
    legs : dict of str to LegReading
        Router legs (routers only).
    fixed_counters : FixedPointCounters or None
        The meter's counters at its last fixed 30-minute point (smart meters that keep them).
    switches : tuple of SwitchState
        Load switch channels (switches and relay boards only).
    notes : tuple of str
        Values found implausible or not implemented and therefore dropped (never passed on).
    """

    ac_power_kw: float | None = None
    counters: EnergyCounters | None = None
    soc_pct: float | None = None
    grid: GridState | None = None
    legs: dict[str, LegReading] = field(default_factory=dict)
    fixed_counters: FixedPointCounters | None = None
    switches: tuple[SwitchState, ...] = ()
    notes: tuple[str, ...] = ()


@runtime_checkable
class Device(Protocol):
    """Lifecycle and identity common to every driver."""

    name: str

    async def connect(self) -> None:
        """Open the connection and discover the device; raise a DeviceError on failure."""

    async def close(self) -> None:
        """Close the connection; never raises."""

    async def read_identity(self) -> DeviceIdentity:
        """Return the device's identity."""

    async def read_snapshot(self) -> DeviceReading:
        """Read every reported value in one poll."""


@runtime_checkable
class ReadsStateOfCharge(Protocol):
    async def read_soc_pct(self) -> float | None:
        """Battery state of charge [%]."""


@runtime_checkable
class WritesBatteryPower(Protocol):
    async def write_battery_power_kw(self, power_kw: float | None, revert_s: float) -> None:
        """Command battery power [kW], positive discharging; None releases control.

        The device reverts to its own control after ``revert_s`` [s] without a new write.
        """


@runtime_checkable
class WritesPvLimit(Protocol):
    async def write_pv_limit_kw(self, limit_kw: float | None, revert_s: float) -> None:
        """Limit PV output to ``limit_kw`` [kW] (None removes the limit) for ``revert_s`` [s]."""


@runtime_checkable
class WritesHeartbeat(Protocol):
    async def write_heartbeat(self) -> None:
        """Tell the device the controller is alive (it falls back on its own otherwise)."""


@runtime_checkable
class ReadsRouterLegs(Protocol):
    async def read_legs(self) -> dict[str, LegReading]:
        """All legs of a router with power [kW] and counters [kWh]."""


@runtime_checkable
class WritesLegPower(Protocol):
    async def write_leg_power_kw(self, leg_id: str, power_kw: float | None) -> None:
        """Set a leg's power setpoint [kW], positive into the router; None releases it."""


@runtime_checkable
class SwitchesLoads(Protocol):
    """A load switch: relay board channels or an ECHONET Lite object switched through 0x80.

    ``on`` means the circuit is connected (served); shedding a circuit is ``set_switch(ch,
    False)``. The driver translates to the device's wiring (energised-to-shed or not).
    """

    async def set_switch(self, channel: int, on: bool) -> None:
        """Command one channel connected (True) or disconnected (False)."""

    async def read_switches(self) -> tuple[SwitchState, ...]:
        """Commanded and measured state of every configured channel."""


@runtime_checkable
class ReadsFixedPointCounters(Protocol):
    async def read_fixed_counters(self) -> FixedPointCounters | None:
        """The meter's cumulative counters at its last fixed 30-minute point."""
