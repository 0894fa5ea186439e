"""Outcome of one dispatch solve: a value with a typed status, never an exception."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

__all__ = ["DispatchPlan", "PlanStatus", "Violation", "OBJECTIVE_PARTS"]

#: Names of the objective parts [JPY]; they sum to ``DispatchPlan.objective_jpy``.
OBJECTIVE_PARTS = (
    "import_cost_jpy",        # sum price_imp * import * dt
    "export_revenue_jpy",     # - sum price_exp * export * dt   (negative = income)
    "battery_wear_jpy",       # sum wear * discharge * dt
    "terminal_value_jpy",     # - sum value * stored_end         (negative = credit)
    "lost_load_jpy",          # sum voll_k * shed * dt
    "demand_charge_jpy",      # sum charge * (peak - peak_so_far)
    "reserve_penalty_jpy",    # sum pen * reserve shortfall
    "soc_penalty_jpy",        # sum pen * deepest dip below soc_min, per battery
    "spill_penalty_jpy",      # sum pen * spilled non-curtailable PV * dt
    "tie_break_jpy",          # tiny cost on charge, import and link flow
)


class PlanStatus(str, enum.Enum):
    """How the plan was obtained."""

    #: Solved to optimality (within the configured MIP gap for a MILP).
    OPTIMAL = "optimal"
    #: Time limit reached; the plan is the best feasible incumbent, see ``mip_gap``.
    TIME_LIMIT_FEASIBLE = "time_limit_feasible"
    #: No usable solver answer; the plan comes from the rule-based fallback.
    FALLBACK = "fallback"


@dataclass(frozen=True)
class Violation:
    """A limit that the plan could not keep, or measured data that had to be corrected.

    Parameters
    ----------
    kind : str
        One of ``"initial_stored_clamped"``, ``"soc_below_min"``, ``"reserve_shortfall"``,
        ``"critical_load_shed"``, ``"surplus_spilled"``.
    node : str or None
        Node concerned, None for block-wide quantities.
    step : int or None
        Plan step concerned, None for the initial state.
    amount : float
        Size of the violation in ``unit``.
    unit : str
        ``"kWh"`` or ``"kW"``.
    message : str
        One-line human explanation.
    """

    kind: str
    node: str | None
    step: int | None
    amount: float
    unit: str
    message: str


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, dtype=float, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class DispatchPlan:
    """A dispatch over the horizon, per node, tier, link and step.

    All power arrays are step averages [kW], >= 0 unless stated; ``stored_kwh`` is the stored
    energy at the END of each step [kWh].

    Parameters
    ----------
    status : PlanStatus
    node_ids : tuple of str
    step_s : float
        Step length [s].
    pv_used_kw, pv_curtailed_kw : ndarray, shape (N, T)
        PV power used and curtailed [kW].
    battery_charge_kw, battery_discharge_kw : ndarray, shape (N, T)
        Battery AC charge and discharge power [kW].
    stored_kwh : ndarray, shape (N, T)
        Stored energy at the end of each step [kWh].
    grid_import_kw, grid_export_kw : ndarray, shape (N, T)
        Utility import and export [kW].
    load_served_kw, load_shed_kw : ndarray, shape (N, K, T)
        Load served and shed per tier [kW].
    surplus_spilled_kw : ndarray, shape (N, T)
        Non-curtailable PV that nothing could absorb [kW] (normally zero).
    link_flow_kw : ndarray, shape (L, T)
        Net sending-end flow [kW], positive from ``from_node`` to ``to_node``.
    link_loss_kw : ndarray, shape (L, T)
        Power lost in the link [kW], >= 0.
    objective_jpy : float
        Objective value [JPY], the sum of ``objective_parts``.
    objective_parts : Mapping[str, float]
        Parts of the objective [JPY], keys :data:`OBJECTIVE_PARTS`.
    mip_gap : float
        Relative gap reported by the solver [-]; 0 for an LP or a proven optimum, NaN for
        the fallback.
    used_binaries : bool
        Whether the MILP form (exclusivity binaries) was needed for this data.
    solver_time_s : float
        Time spent inside HiGHS for this solve [s] (diagnostic only).
    total_time_s : float
        Time of the whole call: update, solve, extract (and build if it happened) [s].
    violations : tuple of Violation
        Slack used and measured data corrected.
    notes : tuple of str
        Other diagnostics (e.g. why the fallback was used).
    """

    status: PlanStatus
    node_ids: tuple[str, ...]
    step_s: float
    pv_used_kw: np.ndarray
    pv_curtailed_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    stored_kwh: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    load_served_kw: np.ndarray
    load_shed_kw: np.ndarray
    surplus_spilled_kw: np.ndarray
    link_flow_kw: np.ndarray
    link_loss_kw: np.ndarray
    objective_jpy: float
    objective_parts: Mapping[str, float]
    mip_gap: float = 0.0
    used_binaries: bool = False
    solver_time_s: float = 0.0
    total_time_s: float = 0.0
    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("pv_used_kw", "pv_curtailed_kw", "battery_charge_kw", "battery_discharge_kw",
                     "stored_kwh", "grid_import_kw", "grid_export_kw", "load_served_kw",
                     "load_shed_kw", "surplus_spilled_kw", "link_flow_kw", "link_loss_kw"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "objective_parts", MappingProxyType(dict(self.objective_parts)))
        object.__setattr__(self, "violations", tuple(self.violations))
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def n_steps(self) -> int:
        """Number of plan steps T [-]."""
        return int(self.pv_used_kw.shape[1])

    @property
    def battery_kw(self) -> np.ndarray:
        """Net battery power [kW], positive when discharging, shape (N, T)."""
        return self.battery_discharge_kw - self.battery_charge_kw

    @property
    def grid_kw(self) -> np.ndarray:
        """Net grid power [kW], positive when importing, shape (N, T)."""
        return self.grid_import_kw - self.grid_export_kw
