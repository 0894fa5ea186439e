"""Dispatch optimizer: a ``DispatchProblem`` in, a ``DispatchPlan`` out.  Pure: no I/O, no clock."""

from optimizer.plan import OBJECTIVE_PARTS, DispatchPlan, PlanStatus, Violation
from optimizer.problem import (
    BatteryData,
    DispatchProblem,
    GridData,
    LinkData,
    Penalties,
    SolverOptions,
    reserve_profile_kwh,
)

__all__ = [
    "OBJECTIVE_PARTS",
    "BatteryData",
    "DispatchPlan",
    "DispatchProblem",
    "GridData",
    "LinkData",
    "Penalties",
    "PlanStatus",
    "SolverOptions",
    "Violation",
    "reserve_profile_kwh",
]
