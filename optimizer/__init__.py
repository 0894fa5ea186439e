"""Dispatch optimizer: a ``DispatchProblem`` in, a ``DispatchPlan`` out.  Pure: no I/O, no clock."""

from optimizer.dispatcher import Dispatcher, solve
from optimizer.fallback import fallback_plan
from optimizer.highs_model import binaries_needed
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
    "Dispatcher",
    "DispatchProblem",
    "GridData",
    "LinkData",
    "Penalties",
    "PlanStatus",
    "SolverOptions",
    "Violation",
    "binaries_needed",
    "fallback_plan",
    "naive_all_binary",
    "reserve_profile_kwh",
    "solve",
]


def naive_all_binary() -> Dispatcher:
    """The benchmark baseline: binaries on every opposite-flow pair and no warm start.

    Same equations, data and big-M values as :class:`Dispatcher`; only the engineering is
    left out (LP detection and MIP starts), as in a straightforward community MILP.
    """
    return Dispatcher(all_binary=True, warm_start=False)
