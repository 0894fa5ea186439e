"""Outcome of one dispatch solve: a value with a typed status, never an exception."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

__all__ = ["DispatchPlan", "PlanArrays", "PlanStatus", "Termination", "Violation",
           "OBJECTIVE_PARTS", "VIOLATION_KINDS"]

#: Names of the objective parts [JPY]; they sum to ``DispatchPlan.objective_jpy``.
OBJECTIVE_PARTS = (
    "import_cost_jpy",        # sum price_imp * import * dt + tier block increments
    "export_revenue_jpy",     # - sum price_exp * export * dt   (negative = income)
    "battery_wear_jpy",       # sum wear * discharge * dt
    "terminal_value_jpy",     # - sum value * stored_end         (negative = credit)
    "lost_load_jpy",          # sum voll_k * shed * dt          (islanded steps)
    "unserved_penalty_jpy",   # sum pen * unserved * dt         (grid-connected steps)
    "demand_charge_jpy",      # sum charge * (peak - peak_so_far), peak of 30-min averages
    "reserve_penalty_jpy",    # sum pen * reserve shortfall * dt
    "soc_penalty_jpy",        # sum pen * deepest dip below soc_min, per battery
    "spill_penalty_jpy",      # sum pen * spilled non-curtailable PV * dt
    "tie_break_jpy",          # tiny cost on charge, import and link flow
)


#: Kinds of :class:`Violation`.
VIOLATION_KINDS = (
    "initial_stored_clamped", "soc_below_min", "reserve_shortfall", "critical_load_shed",
    "surplus_spilled", "load_unserved_while_connected",
)


class Termination(str, enum.Enum):
    """Why the solver stopped (HiGHS's model status, typed)."""

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ERROR = "error"
    OTHER = "other"
    #: No solver ran (the rule-based fallback made the plan).
    NOT_SOLVED = "not_solved"


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
        One of :data:`VIOLATION_KINDS`.  ``"load_unserved_while_connected"`` is load that no
        supply can meet in a grid-connected step (it is reported, never shed).
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
class PlanArrays:
    """The decision arrays of a plan, as a solver or the fallback produce them.

    All [kW] step averages >= 0, shape (N, T) unless stated; stored energies [kWh] at the
    END of each step.  ``load_shed_kw`` is (N, K, T); ``link_fwd_kw``/``link_bwd_kw`` are
    (L, T) sending-end flows in and against the link's direction.  The grey arrays are the
    grid-origin parts of charge, discharge and stored energy.
    """

    pv_used_kw: np.ndarray
    battery_charge_kw: np.ndarray
    battery_discharge_kw: np.ndarray
    battery_charge_grey_kw: np.ndarray
    battery_discharge_grey_kw: np.ndarray
    stored_kwh: np.ndarray
    stored_grey_kwh: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    load_shed_kw: np.ndarray
    surplus_spilled_kw: np.ndarray
    link_fwd_kw: np.ndarray
    link_bwd_kw: np.ndarray


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
    battery_charge_grey_kw, battery_discharge_grey_kw : ndarray, shape (N, T)
        Parts of charge and discharge that are grid-origin energy [kW].
    stored_grey_kwh : ndarray, shape (N, T)
        Grid-origin part of the stored energy at the end of each step [kWh].
    grid_import_kw, grid_export_kw : ndarray, shape (N, T)
        Utility import and export [kW].
    load_served_kw, load_shed_kw : ndarray, shape (N, K, T)
        Load served and not served per tier [kW].  In grid-connected steps any load not
        served is a violation (``load_unserved_while_connected``), never a shedding order.
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
    termination : Termination
        Why the solver stopped (``NOT_SOLVED`` for the fallback).
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
    battery_charge_grey_kw: np.ndarray | None = None
    battery_discharge_grey_kw: np.ndarray | None = None
    stored_grey_kwh: np.ndarray | None = None
    termination: Termination = Termination.NOT_SOLVED
    mip_gap: float = 0.0
    used_binaries: bool = False
    solver_time_s: float = 0.0
    total_time_s: float = 0.0
    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("battery_charge_grey_kw", "battery_discharge_grey_kw", "stored_grey_kwh"):
            if getattr(self, name) is None:  # plans from before origin tags: no grey energy
                object.__setattr__(self, name, np.zeros_like(self.stored_kwh))
        for name in ("pv_used_kw", "pv_curtailed_kw", "battery_charge_kw", "battery_discharge_kw",
                     "stored_kwh", "grid_import_kw", "grid_export_kw", "load_served_kw",
                     "load_shed_kw", "surplus_spilled_kw", "link_flow_kw", "link_loss_kw",
                     "battery_charge_grey_kw", "battery_discharge_grey_kw", "stored_grey_kwh"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "termination", Termination(self.termination))
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
