"""Small physical models of single devices: battery, PV inverter, meter, router leg.

Pure and deterministic: each model is a frozen dataclass for its ratings plus a frozen state,
and ``step(state, command, dt_s)`` returns the next state. No clock, no I/O. Emulators and the
simulator advance them; tests check the physics directly.

Sign convention (supply-positive): ``power_kw > 0`` supplies the site (battery discharge,
PV output, grid import, flow into a router from a leg).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

_S_PER_H = 3600.0


@dataclass(frozen=True)
class BatterySpec:
    """Ratings of a battery system.

    Attributes
    ----------
    capacity_kwh : float
        Usable energy capacity [kWh].
    max_charge_kw, max_discharge_kw : float
        AC power limits, magnitudes [kW].
    charge_efficiency, discharge_efficiency : float
        One-way efficiencies [-], in (0, 1].
    self_discharge_pct_per_day : float
        Loss of stored energy per day [% of stored energy / day].
    soc_min_pct, soc_max_pct : float
        Allowed state-of-charge window [%].
    """

    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    self_discharge_pct_per_day: float = 0.1
    soc_min_pct: float = 5.0
    soc_max_pct: float = 100.0

    def __post_init__(self) -> None:
        if self.capacity_kwh <= 0 or self.max_charge_kw < 0 or self.max_discharge_kw < 0:
            raise ValueError("battery capacity must be > 0 and power limits >= 0")
        if not (0 < self.charge_efficiency <= 1 and 0 < self.discharge_efficiency <= 1):
            raise ValueError("battery efficiencies must be within (0, 1]")


@dataclass(frozen=True)
class BatteryState:
    """State of a battery.

    Attributes
    ----------
    stored_kwh : float
        Energy stored [kWh].
    power_kw : float
        AC power over the last step [kW], positive discharging.
    charged_kwh, discharged_kwh : float
        Cumulative AC energy into / out of the battery [kWh], never decreasing.
    """

    stored_kwh: float
    power_kw: float = 0.0
    charged_kwh: float = 0.0
    discharged_kwh: float = 0.0

    def soc_pct(self, spec: BatterySpec) -> float:
        """State of charge [%] of the usable capacity."""
        return 100.0 * self.stored_kwh / spec.capacity_kwh


def battery_power_limits_kw(spec: BatterySpec, state: BatteryState, dt_s: float) -> tuple[float, float]:
    """Feasible AC power range for a step of ``dt_s`` [s]: (most charging <= 0, most discharging >= 0) [kW].

    Bounded by the power ratings and by the energy that stays within the SoC window.
    """
    hours = dt_s / _S_PER_H
    floor_kwh = spec.capacity_kwh * spec.soc_min_pct / 100.0
    ceil_kwh = spec.capacity_kwh * spec.soc_max_pct / 100.0
    room_charge_kw = max(0.0, ceil_kwh - state.stored_kwh) / spec.charge_efficiency / hours if hours else 0.0
    room_discharge_kw = max(0.0, state.stored_kwh - floor_kwh) * spec.discharge_efficiency / hours if hours else 0.0
    return -min(spec.max_charge_kw, room_charge_kw), min(spec.max_discharge_kw, room_discharge_kw)


def step_battery(spec: BatterySpec, state: BatteryState, setpoint_kw: float, dt_s: float) -> BatteryState:
    """Advance a battery by ``dt_s`` [s] at ``setpoint_kw`` [kW] (positive discharging), clamped to limits.

    Energy stored changes by ``-P*dt/eta_d`` when discharging, ``-P*dt*eta_c`` when charging,
    minus self-discharge; the AC counters grow by ``|P|*dt``.
    """
    if dt_s <= 0:
        return state
    low_kw, high_kw = battery_power_limits_kw(spec, state, dt_s)
    power_kw = min(max(setpoint_kw, low_kw), high_kw)
    hours = dt_s / _S_PER_H
    if power_kw >= 0:
        stored = state.stored_kwh - power_kw * hours / spec.discharge_efficiency
        discharged, charged = state.discharged_kwh + power_kw * hours, state.charged_kwh
    else:
        stored = state.stored_kwh - power_kw * hours * spec.charge_efficiency
        discharged, charged = state.discharged_kwh, state.charged_kwh - power_kw * hours
    stored -= stored * spec.self_discharge_pct_per_day / 100.0 * dt_s / 86400.0
    stored = min(max(stored, 0.0), spec.capacity_kwh)
    return BatteryState(stored_kwh=stored, power_kw=power_kw, charged_kwh=charged, discharged_kwh=discharged)


@dataclass(frozen=True)
class PvSpec:
    """Ratings of a PV inverter: AC rating [kW]."""

    rated_kw: float

    def __post_init__(self) -> None:
        if self.rated_kw <= 0:
            raise ValueError("PV rating must be > 0")


@dataclass(frozen=True)
class PvState:
    """State of a PV inverter.

    Attributes
    ----------
    power_kw : float
        AC output over the last step [kW], >= 0.
    produced_kwh : float
        Cumulative AC energy produced [kWh].
    """

    power_kw: float = 0.0
    produced_kwh: float = 0.0


def step_pv(spec: PvSpec, state: PvState, available_kw: float, limit_kw: float | None, dt_s: float) -> PvState:
    """Advance a PV inverter: output = min(available, rating, curtailment limit) [kW], never negative."""
    power_kw = max(0.0, min(available_kw, spec.rated_kw, spec.rated_kw if limit_kw is None else limit_kw))
    return PvState(power_kw=power_kw, produced_kwh=state.produced_kwh + power_kw * max(dt_s, 0.0) / _S_PER_H)


@dataclass(frozen=True)
class CounterPair:
    """Bidirectional energy counters of a metered point.

    Attributes
    ----------
    power_kw : float
        Power over the last step [kW], positive in the counted "supplied"/import direction.
    import_kwh, export_kwh : float
        Cumulative energy with positive / negative power [kWh].
    """

    power_kw: float = 0.0
    import_kwh: float = 0.0
    export_kwh: float = 0.0


def step_counters(state: CounterPair, power_kw: float, dt_s: float) -> CounterPair:
    """Accumulate ``power_kw`` [kW] for ``dt_s`` [s] into the import (P > 0) or export (P < 0) counter."""
    energy_kwh = abs(power_kw) * max(dt_s, 0.0) / _S_PER_H
    if power_kw >= 0:
        return replace(state, power_kw=power_kw, import_kwh=state.import_kwh + energy_kwh)
    return replace(state, power_kw=power_kw, export_kwh=state.export_kwh + energy_kwh)


@dataclass(frozen=True)
class RouterLegSpec:
    """A router leg: its id and power limit [kW] (magnitude)."""

    leg_id: str
    limit_kw: float


def leg_power_kw(spec: RouterLegSpec, requested_kw: float) -> float:
    """Leg power [kW] (positive into the router) clamped to the leg's limit."""
    return max(-spec.limit_kw, min(spec.limit_kw, requested_kw))


def meter_power_kw(load_kw: float, pv_kw: float, battery_kw: float) -> float:
    """Grid power of a node [kW], positive importing: ``load - pv - battery`` (lossless node balance)."""
    return load_kw - pv_kw - battery_kw
