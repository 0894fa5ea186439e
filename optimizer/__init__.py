"""Dispatch optimizer: a ``DispatchProblem`` in, a ``DispatchPlan`` out.  Pure: no I/O, no clock.

Three steps, as in DESIGN.md: build the model for a problem shape, update it in place and
solve, extract a plan.  Typical use::

    dispatcher = Dispatcher()            # keep it: it holds the persistent HiGHS model
    plan = dispatcher.solve(problem)     # never raises for solver or data reasons
    if plan.status is PlanStatus.FALLBACK: ...

* :class:`Dispatcher` - production path: the formulation (:mod:`optimizer.formulation`) is
  handed to HiGHS as arrays (:mod:`optimizer.highs_model`), an LP wherever that is exact
  (:func:`binaries_needed`; grey/green mode binaries marked only where a relaxation mixes
  grid energy with P2P sending), warm-started between cycles (the previous basis moved with
  the rolling horizon); a time-out gives the incumbent, or :func:`fallback_plan`.
* :func:`rule_breaches` - how much of a plan breaks each rule of the block.
* :func:`fallback_plan` - rule-based plan with status ``fallback``.
* :mod:`optimizer.reference` - the same formulation in Pyomo, the exact all-binary MILP used
  as the reference in the tests.
* :func:`naive_all_binary` - the benchmark baseline.
* :func:`reserve_profile_kwh` - the block reserve, raised ahead of a warned outage.

Not thread-safe: one ``Dispatcher`` per solving thread.
"""

from optimizer.dispatcher import Dispatcher, solve
from optimizer.fallback import fallback_plan
from optimizer.accounting import RuleBreaches, rule_breaches
from optimizer.layout import Binaries, binaries_needed
from optimizer.plan import OBJECTIVE_PARTS, DispatchPlan, PlanArrays, PlanStatus, Termination, Violation
from optimizer.problem import (
    BILLING_GROUPS,
    BatteryData,
    DispatchProblem,
    GridData,
    ImportTiers,
    LinkData,
    Penalties,
    SolverOptions,
    reserve_profile_kwh,
)

__all__ = [
    "BILLING_GROUPS",
    "OBJECTIVE_PARTS",
    "BatteryData",
    "Binaries",
    "ImportTiers",
    "PlanArrays",
    "RuleBreaches",
    "Termination",
    "rule_breaches",
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
