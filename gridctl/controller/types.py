"""Values exchanged between the controller core, the daemon and the simulator.

Everything here is a frozen dataclass: the daemon and the simulator build a :class:`Snapshot`
from readings, keep a :class:`ControllerState` between cycles, and receive :class:`Setpoints`
to write.  The pure functions that connect them live in :mod:`gridctl.controller`:

* ``transition(site, state, snapshot, now) -> Transition`` -- the mode state machine,
* ``build_problem(site, state, snapshot, forecast, now) -> DispatchProblem``,
* ``accept_plan(state, plan, plan_start, now) -> ControllerState``,
* ``decide(site, state, snapshot, now) -> Decision``.

Sign convention (supply-positive): ``pv_kw >= 0``, ``load_kw >= 0``, ``grid_kw > 0`` imports,
``battery_kw > 0`` discharges; a link's ``flow_kw`` is positive from its ``from_router`` to its
``to_router``; a router leg's power is positive into the router.  Missing readings are
``None``, never 0.  Times are tz-aware UTC.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

import numpy as np

from gridctl.controller.switches import ShedState, SwitchCommand, SwitchReading
from optimizer import DispatchPlan

__all__ = [
    "BillingState",
    "Decision",
    "DeviceHealth",
    "Forecast",
    "GridSignal",
    "Mode",
    "NodeBilling",
    "NodeReading",
    "OutageWindow",
    "ReserveRequest",
    "Setpoint",
    "SetpointKind",
    "Setpoints",
    "Snapshot",
    "ControllerState",
    "Transition",
]


def _require_utc(owner: str, name: str, value: dt.datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{owner}.{name}: datetime must be timezone-aware")


def _frozen_map(value: Mapping | None) -> Mapping:
    return MappingProxyType(dict(value or {}))


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeReading:
    """What was measured at one node in one poll.  ``None`` means not measured.

    Non-finite values (NaN, inf) are turned into ``None`` on construction.

    Parameters
    ----------
    pv_kw : float or None
        PV output [kW], >= 0.
    load_kw : float or None
        Consumption of the node [kW], >= 0 (all tiers together).
    grid_kw : float or None
        Power at the grid connection point [kW], positive importing.
    battery_kw : float or None
        Battery AC power [kW], positive discharging.
    stored_kwh : float or None
        Energy stored in the battery [kWh]; preferred over ``soc_pct`` when both are given.
    soc_pct : float or None
        Battery state of charge [% of ``capacity_kwh``].
    grid_available : bool or None
        Utility grid present on the grid side of the node's router (the explicit grid-state
        signal used for unplanned islanding); None when the router gave no answer.
    grid_voltage_v : float or None
        Utility-side voltage seen by the router [V].
    grid_frequency_hz : float or None
        Utility-side frequency seen by the router [Hz].
    grid_import_kwh : float or None
        Cumulative energy imported from the utility at the node's grid meter [kWh] (only
        rises; settlement and the billing context difference it).
    """

    pv_kw: float | None = None
    load_kw: float | None = None
    grid_kw: float | None = None
    battery_kw: float | None = None
    stored_kwh: float | None = None
    soc_pct: float | None = None
    grid_available: bool | None = None
    grid_voltage_v: float | None = None
    grid_frequency_hz: float | None = None
    grid_import_kwh: float | None = None

    def __post_init__(self) -> None:
        # A NaN or infinite reading is a missing reading: make it None once, here, so that
        # no arithmetic downstream can be poisoned by it.
        for name in _NUMERIC_READINGS:
            value = getattr(self, name)
            if value is None:
                continue
            value = float(value)
            object.__setattr__(self, name, value if math.isfinite(value) else None)


#: The numeric fields of :class:`NodeReading` (all but ``grid_available``), listed once.
_NUMERIC_READINGS = tuple(f.name for f in fields(NodeReading) if f.name != "grid_available")
#: A node that was not read (all readings ``None``); frozen, so one instance serves all.
_UNREAD = NodeReading()


@dataclass(frozen=True)
class DeviceHealth:
    """Health of one device in the last poll.

    Parameters
    ----------
    ok : bool
        True when the device answered and reported no fault.
    fault : str or None
        One-line reason when not ok.
    """

    ok: bool
    fault: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """One consistent set of readings of the whole block.

    Parameters
    ----------
    at_utc : datetime
        When the readings were taken (tz-aware).
    nodes : Mapping[str, NodeReading]
        Readings per node id; a node without an entry counts as all-``None``.
    link_flow_kw : Mapping[str, float or None]
        Measured flow per link id [kW], positive from ``from_router`` to ``to_router``.
    devices : Mapping[str, DeviceHealth]
        Health per device id; a device without an entry is treated as unhealthy.
    switches : Mapping[str, tuple of SwitchReading]
        Channels of each switch device (relay board, ECHONET Lite switch) that was read.
    """

    at_utc: dt.datetime
    nodes: Mapping[str, NodeReading] = field(default_factory=dict)
    link_flow_kw: Mapping[str, float | None] = field(default_factory=dict)
    devices: Mapping[str, DeviceHealth] = field(default_factory=dict)
    switches: Mapping[str, tuple[SwitchReading, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_utc("Snapshot", "at_utc", self.at_utc)
        object.__setattr__(self, "nodes", _frozen_map(self.nodes))
        object.__setattr__(self, "link_flow_kw", _frozen_map(self.link_flow_kw))
        object.__setattr__(self, "devices", _frozen_map(self.devices))
        object.__setattr__(self, "switches", _frozen_map({k: tuple(v) for k, v in (self.switches or {}).items()}))

    def node(self, node_id: str) -> NodeReading:
        """Readings of ``node_id``; all-``None`` when the node was not read."""
        return self.nodes.get(node_id, _UNREAD)

    def device_ok(self, device_id: str) -> bool:
        """True when ``device_id`` was read and reported healthy."""
        health = self.devices.get(device_id)
        return bool(health is not None and health.ok)


# --------------------------------------------------------------------------------------------
# Controller state
# --------------------------------------------------------------------------------------------


class Mode(str, enum.Enum):
    """Operating mode of the block (IEEE 2030.7 transition function)."""

    #: Tied to the utility grid; economic dispatch.
    GRID_CONNECTED = "grid_connected"
    #: A warned outage is about to start: drive the grid-tie flow to about zero, then open.
    PLANNED_ISLANDING = "planned_islanding"
    #: Running without the utility grid (planned or not); loads shed by tier as needed.
    ISLANDED = "islanded"
    #: The grid is back and healthy; waiting ``reconnect_delay_s`` before closing the tie.
    RECONNECTING = "reconnecting"


class GridSignal(str, enum.Enum):
    """The utility grid as the routers report it (never inferred from 0 W at a meter)."""

    HEALTHY = "healthy"
    LOST = "lost"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OutageWindow:
    """A warned (planned) utility outage, half-open ``[start_utc, end_utc)``."""

    start_utc: dt.datetime
    end_utc: dt.datetime
    reason: str = ""

    def __post_init__(self) -> None:
        _require_utc("OutageWindow", "start_utc", self.start_utc)
        _require_utc("OutageWindow", "end_utc", self.end_utc)
        if self.end_utc <= self.start_utc:
            raise ValueError("OutageWindow.end_utc: must be after start_utc")

    def contains(self, at_utc: dt.datetime) -> bool:
        """True when ``at_utc`` lies inside the window."""
        return self.start_utc <= at_utc < self.end_utc


@dataclass(frozen=True)
class ReserveRequest:
    """An operator's request to keep more in store than the policy's ``reserve_hours_h``.

    Parameters
    ----------
    hours_h : float
        Hours of block critical load to keep stored [h], >= 0.
    until_utc : datetime
        The request lapses at this time.
    """

    hours_h: float
    until_utc: dt.datetime

    def __post_init__(self) -> None:
        _require_utc("ReserveRequest", "until_utc", self.until_utc)
        if not self.hours_h >= 0:
            raise ValueError("ReserveRequest.hours_h: must be >= 0")


@dataclass(frozen=True)
class NodeBilling:
    """One node's billing context.

    Parameters
    ----------
    month : str
        Site-local calendar month ``YYYY-MM`` the figures belong to.
    month_import_kwh : float
        Grid import this month so far [kWh], the open period included.
    period_start_utc : datetime or None
        Start of the open 30-minute period.
    period_import_kwh : float
        Grid import in the open period so far [kWh].
    month_peak_kw : float
        Highest average import of a closed period this month [kW].
    past_peaks_kw : tuple of (str, float)
        Peaks of earlier months, oldest first, at most 11 [kW].
    counter_kwh : float or None
        Last cumulative import counter seen [kWh].
    """

    month: str
    month_import_kwh: float = 0.0
    period_start_utc: dt.datetime | None = None
    period_import_kwh: float = 0.0
    month_peak_kw: float = 0.0
    past_peaks_kw: tuple[tuple[str, float], ...] = ()
    counter_kwh: float | None = None


@dataclass(frozen=True, eq=False)
class BillingState:
    """Billing context of every node, and when it was last updated."""

    nodes: Mapping[str, NodeBilling] = field(default_factory=dict)
    observed_utc: dt.datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))

    def node(self, node_id: str, month: str) -> NodeBilling:
        """The node's context, or an empty one for ``month``."""
        return self.nodes.get(node_id) or NodeBilling(month)


@dataclass(frozen=True, eq=False)
class ControllerState:
    """Everything the controller remembers between cycles.  Replace, never mutate.

    Parameters
    ----------
    mode : Mode
    mode_since_utc : datetime
        When the current mode was entered.
    plan : DispatchPlan or None
        The last accepted plan.
    plan_start_utc : datetime or None
        Start of the plan's step 0 (aligned to a step boundary).
    plan_made_at_utc : datetime or None
        When the plan was accepted.
    reserve_request : ReserveRequest or None
        Operator reserve request, if any.
    outage_windows : tuple of OutageWindow
        Warned outages, in any order.
    grid_healthy_since_utc : datetime or None
        Since when the grid signal has been continuously healthy while islanded or
        reconnecting (None otherwise).
    billing : BillingState
        Month-to-date import and demand peaks per node (:mod:`gridctl.controller.billing`).
    grey_kwh : Mapping[str, float]
        Grid-origin part of each node's stored energy [kWh] (:mod:`gridctl.controller.origin`);
        missing nodes hold none.
    observed_utc : datetime or None
        Time of the last snapshot folded into ``billing`` and ``grey_kwh``.
    plan_requested_utc : datetime or None
        When the plan being solved was asked for (None when no solve is outstanding).
    replan_wanted : bool
        Something changed that the plan does not know (operator command, device health):
        re-plan at the next cycle.
    device_faults : frozenset of str
        Devices unhealthy in the last snapshot (a change asks for a re-plan).
    shedding : ShedState
        The load-switch state machine's memory (:mod:`gridctl.controller.shedding`).
    """

    mode: Mode
    mode_since_utc: dt.datetime
    plan: DispatchPlan | None = None
    plan_start_utc: dt.datetime | None = None
    plan_made_at_utc: dt.datetime | None = None
    reserve_request: ReserveRequest | None = None
    outage_windows: tuple[OutageWindow, ...] = ()
    grid_healthy_since_utc: dt.datetime | None = None
    billing: BillingState = field(default_factory=BillingState)
    grey_kwh: Mapping[str, float] = field(default_factory=dict)
    observed_utc: dt.datetime | None = None
    plan_requested_utc: dt.datetime | None = None
    replan_wanted: bool = False
    device_faults: frozenset[str] = frozenset()
    shedding: ShedState = field(default_factory=ShedState)

    def __post_init__(self) -> None:
        for name in ("mode_since_utc", "plan_start_utc", "plan_made_at_utc",
                     "grid_healthy_since_utc", "observed_utc", "plan_requested_utc"):
            _require_utc("ControllerState", name, getattr(self, name))
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "outage_windows", tuple(self.outage_windows))
        object.__setattr__(self, "grey_kwh", _frozen_map(self.grey_kwh))
        object.__setattr__(self, "device_faults", frozenset(self.device_faults))


@dataclass(frozen=True)
class Transition:
    """Result of one step of the mode state machine.

    Parameters
    ----------
    state : ControllerState
        The state after the step (the same object when nothing changed).
    signal : GridSignal
        The grid signal the step was based on.
    changed : bool
        True when the mode changed.
    notes : tuple of str
        Why it changed, or why it did not when the signal was unclear.
    """

    state: ControllerState
    signal: GridSignal
    changed: bool
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Forecast
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Forecast:
    """PV and load forecast per node over the plan steps.

    Parameters
    ----------
    start_utc : datetime
        Start of step 0 (aligned to a step boundary).
    step_s : float
        Step length [s].
    node_ids : tuple of str
        Row order of the arrays.
    pv_kw : ndarray, shape (N, T)
        PV power available, step average [kW], >= 0.
    load_kw : ndarray, shape (N, T)
        Load of all tiers together, step average [kW], >= 0.
    notes : tuple of str
        How each part was made (e.g. a fallback profile for want of history).
    """

    start_utc: dt.datetime
    step_s: float
    node_ids: tuple[str, ...]
    pv_kw: np.ndarray
    load_kw: np.ndarray
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_utc("Forecast", "start_utc", self.start_utc)
        object.__setattr__(self, "node_ids", tuple(self.node_ids))
        for name in ("pv_kw", "load_kw"):
            arr = np.array(getattr(self, name), dtype=float, copy=True)
            if arr.ndim != 2 or arr.shape[0] != len(self.node_ids):
                raise ValueError(f"Forecast.{name}: shape {arr.shape} is not (nodes, steps)")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"Forecast.{name}: values must be finite and >= 0")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if self.pv_kw.shape != self.load_kw.shape:
            raise ValueError("Forecast.load_kw: shape differs from pv_kw")
        if self.step_s <= 0:
            raise ValueError("Forecast.step_s: must be > 0")
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def n_steps(self) -> int:
        """Number of steps T [-]."""
        return int(self.pv_kw.shape[1])


# --------------------------------------------------------------------------------------------
# Setpoints
# --------------------------------------------------------------------------------------------


class SetpointKind(str, enum.Enum):
    """What a setpoint commands."""

    #: Battery AC power [kW], positive discharging (``WritesBatteryPower``).
    BATTERY_KW = "battery_kw"
    #: Upper limit of PV output [kW], >= 0 (``WritesPvLimit``); the AC rating means no limit.
    PV_LIMIT_KW = "pv_limit_kw"
    #: Router leg power [kW], positive into the router (``WritesLegPower``).
    LEG_KW = "leg_kw"


@dataclass(frozen=True)
class Setpoint:
    """One command for one device, already clamped to its ratings.

    Parameters
    ----------
    device_id : str
        Device to write (battery, PV inverter or router id).
    node_id : str
        Node the device belongs to.
    kind : SetpointKind
    value_kw : float
        Commanded power [kW] in the sign convention of ``kind``.
    expires_at_utc : datetime
        After this the device must fall back to its own safe behaviour (revert timer).
    leg_id : str or None
        Router leg id for ``LEG_KW``; None otherwise.
    """

    device_id: str
    node_id: str
    kind: SetpointKind
    value_kw: float
    expires_at_utc: dt.datetime
    leg_id: str | None = None

    def __post_init__(self) -> None:
        _require_utc("Setpoint", "expires_at_utc", self.expires_at_utc)
        object.__setattr__(self, "kind", SetpointKind(self.kind))
        if (self.kind is SetpointKind.LEG_KW) != (self.leg_id is not None):
            raise ValueError(f"Setpoint.leg_id: needed exactly for leg setpoints "
                             f"({self.device_id})")
        if not np.isfinite(self.value_kw):
            raise ValueError(f"Setpoint.value_kw: not finite ({self.device_id})")


@dataclass(frozen=True)
class Setpoints:
    """All commands of one cycle.

    Parameters
    ----------
    at_utc : datetime
        When they were decided.
    items : tuple of Setpoint
        One per battery, PV inverter and controlled router leg.
    shed_tiers : Mapping[str, tuple of int]
        Per node id, the configured load tiers (``load.shed_tier`` numbers, >= 1) to
        disconnect now; empty tuple or absent means serve everything.
    grid_tie_open : bool
        True when the block must run disconnected from the utility grid (islanded); routers
        hold their grid legs at zero.
    switch_commands : tuple of SwitchCommand
        Every switched channel's command this cycle (:mod:`gridctl.controller.shedding`).
    """

    at_utc: dt.datetime
    items: tuple[Setpoint, ...] = ()
    shed_tiers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    grid_tie_open: bool = False
    switch_commands: tuple[SwitchCommand, ...] = ()

    def __post_init__(self) -> None:
        _require_utc("Setpoints", "at_utc", self.at_utc)
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "switch_commands", tuple(self.switch_commands))
        object.__setattr__(self, "shed_tiers",
                           _frozen_map({k: tuple(v) for k, v in (self.shed_tiers or {}).items()}))

    def value_kw(self, device_id: str, kind: SetpointKind,
                 leg_id: str | None = None) -> float | None:
        """The commanded value [kW] of one device (and leg), or None when absent."""
        for s in self.items:
            if s.device_id == device_id and s.kind is kind and s.leg_id == leg_id:
                return s.value_kw
        return None


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`gridctl.controller.decide`.

    Parameters
    ----------
    setpoints : Setpoints
    notes : tuple of str
        Diagnostics: corrections applied, clamps, why the fallback was used.
    used_fallback : bool
        True when the rule-based fallback made the setpoints (no valid plan).
    plan_step : int or None
        Index of the plan step followed, None with the fallback.
    """

    setpoints: Setpoints
    notes: tuple[str, ...] = ()
    used_fallback: bool = False
    plan_step: int | None = None
