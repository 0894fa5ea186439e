"""Solve a ``DispatchProblem`` on a persistent HiGHS model: update, solve, extract.

The outcome is always a ``DispatchPlan``: optimal, the incumbent at the time limit, or the
rule-based fallback plan when the solver gives nothing usable.  Nothing here raises for data
reasons, reads a clock for decisions, touches files or logs.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from optimizer.accounting import clamp_initial_stored, make_plan
from optimizer.fallback import fallback_plan
from optimizer.highs_model import HighsModel, binaries_needed, shape_key
from optimizer.plan import DispatchPlan, PlanStatus
from optimizer.problem import DispatchProblem

__all__ = ["Dispatcher", "solve"]


class Dispatcher:
    """Holds the persistent model between cycles; rebuilds only when the shape changes.

    Parameters
    ----------
    all_binary : bool
        Naive formulation for benchmarks: exclusivity binaries on every charge/discharge,
        import/export and link-direction pair, whether or not they change the answer.
    warm_start : bool
        For a MILP, offer the previous solution shifted by one step as MIP start (the
        fallback plan when there is none), so a time-out still has an incumbent.  LPs always
        re-solve from the previous basis: as it is when the horizon did not roll, moved by
        the roll (:func:`step_shift`) when it did, and then with primal simplex if the
        previous plan still fits every remaining step, else dual simplex.  A freshly built
        LP is first solved with the links closed, whose basis starts the real solve.

    Notes
    -----
    Measured on the 1,000-home synthetic block (``bench/optimizer.py``), a re-plan one step
    on costs about 15 s CPU of dual simplex from the unshifted basis, 11 s from the shifted
    basis, and under 1 s of primal simplex from the shifted basis when the state followed
    the plan and forecasts did not change.  Primal simplex from a basis whose plan no
    longer fits (new forecasts, drifted state) is far slower than dual (5x at 200 homes,
    40x unshifted at 1,000 homes), hence the check.

    Examples
    --------
    >>> dispatcher = Dispatcher()
    >>> plan = dispatcher.solve(problem)          # doctest: +SKIP
    """

    def __init__(self, all_binary: bool = False, warm_start: bool = True) -> None:
        self.all_binary = all_binary
        self.warm_start = warm_start
        self._model: HighsModel | None = None
        self._last_values: np.ndarray | None = None
        self._last_problem: DispatchProblem | None = None
        #: Seconds spent building the model in the last call [s] (0 when reused).
        self.last_build_s = 0.0

    def solve(self, problem: DispatchProblem) -> DispatchPlan:
        """Plan the dispatch for ``problem``; never raises for solver or data reasons."""
        start_s = time.perf_counter()
        stored0, notes = clamp_initial_stored(problem)
        binaries = binaries_needed(problem, self.all_binary)
        try:
            model = self._model_for(problem, binaries)
            opts = problem.options
            budget_s, first_solver_s = opts.time_limit_s, 0.0
            if self.last_build_s > 0 and problem.n_links and not _is_mip(binaries):
                first_solver_s = _decoupled_start(model, problem, binaries, stored0, opts)
                budget_s = max(budget_s - first_solver_s, 1e-3)
            primal = self._update(model, problem, binaries, stored0)
            if self.warm_start and model.is_mip:
                # A MIP start gives HiGHS an incumbent at once, so a time-out still has one.
                start = (_shifted(model, self._last_values) if self._last_values is not None
                         else model.columns_from(problem, fallback_plan(problem)))
                model.set_start(start)
            result = model.run(budget_s, opts.mip_rel_gap, opts.threads, primal=primal)
            result["solver_s"] += first_solver_s
        except Exception as exc:  # the plan is a value: any solver failure becomes the fallback
            self._model, self._last_values, self._last_problem = None, None, None
            return _fallback(problem, f"solver failed: {type(exc).__name__}: {exc}", start_s)
        if result["values"] is None:
            self._last_values, self._last_problem = None, None
            return _fallback(problem, f"no solution from HiGHS ({result['status']})", start_s)
        self._last_values, self._last_problem = result["values"], problem
        status = PlanStatus.OPTIMAL if result["optimal"] else PlanStatus.TIME_LIMIT_FEASIBLE
        arrays = _extract(model, problem, result["values"])
        plan = make_plan(problem, arrays, status, notes, mip_gap=result["gap"],
                         used_binaries=model.is_mip, solver_time_s=result["solver_s"],
                         notes=(f"HiGHS: {result['status']}",))
        if status is PlanStatus.TIME_LIMIT_FEASIBLE:
            # An early incumbent can be worse than the rules; never hand out the worse one.
            rules = fallback_plan(problem, note="time limit: fallback beats the incumbent "
                                  f"({plan.objective_jpy:.2f} JPY)")
            if rules.objective_jpy < plan.objective_jpy:
                plan = rules
        return dataclasses.replace(plan, total_time_s=time.perf_counter() - start_s)

    def _update(self, model: HighsModel, problem: DispatchProblem, binaries: dict,
                stored0: np.ndarray) -> bool:
        """Push the data; for an LP re-solve after a roll, move the basis with the horizon.

        Returns whether to use primal simplex: when the previous plan still fits every
        remaining step (data rolled, state as planned), primal simplex only repairs the new
        steps, in a few pivots.  Otherwise (new forecasts, drifted state) the shifted basis
        is still nearly dual feasible and dual simplex is far faster than primal.
        """
        shift = 0
        if (self.last_build_s == 0 and self._last_problem is not None and not model.is_mip
                and not _is_mip(binaries)):
            shift = step_shift(self._last_problem, problem)
        basis = model.basis_status() if shift else None
        model.update(problem, binaries, stored0)
        if basis is None:
            return False
        model.set_shifted_basis(*basis, shift)
        return model.shifted_values_fit(self._last_values, shift)

    def _model_for(self, problem: DispatchProblem, binaries: dict) -> HighsModel:
        key = shape_key(problem, binaries)
        if self._model is None or self._model.key != key:
            build_start_s = time.perf_counter()
            self._model = HighsModel(problem, binaries)
            self._last_values, self._last_problem = None, None
            self.last_build_s = time.perf_counter() - build_start_s
        else:
            self.last_build_s = 0.0
        return self._model


def _is_mip(binaries: dict[str, np.ndarray]) -> bool:
    return any(bool(mask.any()) for mask in binaries.values())


def _decoupled_start(model: HighsModel, problem: DispatchProblem, binaries: dict,
                     stored0: np.ndarray, opts) -> float:
    """Solve the fresh LP once with every link closed and keep its basis; return HiGHS time [s].

    Without links the LP falls apart into one small problem per node, which dual simplex
    solves in about a third of the time; the real LP then starts from that basis.  Measured
    on the synthetic blocks this cuts build plus first solve by about 40 %.
    """
    links = dataclasses.replace(problem.links, capacity_kw=np.zeros(problem.n_links))
    model.update(dataclasses.replace(problem, links=links), binaries, stored0)
    return float(model.run(opts.time_limit_s, opts.mip_rel_gap, opts.threads)["solver_s"])


#: Largest roll of the horizon between two solves that :func:`step_shift` looks for [steps].
MAX_SHIFT_STEPS = 4


def step_shift(before: DispatchProblem, after: DispatchProblem) -> int:
    """By how many steps the horizon rolled from ``before`` to ``after`` (0 if it did not).

    The problem carries no clock, so the roll is read off the data: the shift ``k`` for which
    ``after``'s first steps best match ``before``'s steps from ``k`` on (PV, load and import
    price).  A wrong guess costs only solver time, never a different answer: the result only
    chooses the starting basis.
    """
    n_steps = after.n_steps
    if before.n_steps != n_steps:
        return 0
    pairs = [(before.pv_available_kw, after.pv_available_kw), (before.load_kw, after.load_kw),
             (before.grid.import_price_jpy_per_kwh, after.grid.import_price_jpy_per_kwh)]
    errors = [sum(float(np.mean(np.abs(new[..., :n_steps - k] - old[..., k:])))
                  for old, new in pairs) for k in range(min(MAX_SHIFT_STEPS, n_steps - 1) + 1)]
    best = int(np.argmin(errors))
    # A roll must match clearly better than no roll: a wrong shifted start is slow to repair.
    return best if errors[best] < 0.5 * errors[0] else 0


def solve(problem: DispatchProblem) -> DispatchPlan:
    """One-off solve with a fresh :class:`Dispatcher`."""
    return Dispatcher().solve(problem)


def _fallback(problem: DispatchProblem, why: str, start_s: float) -> DispatchPlan:
    plan = fallback_plan(problem, note=why)
    return dataclasses.replace(plan, total_time_s=time.perf_counter() - start_s)


def _shifted(model: HighsModel, values: np.ndarray) -> np.ndarray:
    """Previous solution moved one step earlier, the last step repeated."""
    out = values.copy()
    for name, block in model.cols.blocks.items():
        if name in ("peak", "borrow"):  # not indexed by step
            continue
        ids = block.ids()
        prev = values[ids]
        out[ids] = np.concatenate([prev[..., 1:], prev[..., -1:]], axis=-1)
    return out


def _extract(model: HighsModel, problem: DispatchProblem, x: np.ndarray) -> dict[str, np.ndarray]:
    """Full-size, non-negative plan arrays from the column values."""
    n, t = problem.n_nodes, problem.n_steps
    bn, spill = model.masks["battery"], model.masks["spill"]

    def val(ids: np.ndarray) -> np.ndarray:
        return np.maximum(x[ids], 0.0)  # HiGHS may return -1e-12 for a zero

    def scatter(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
        full = np.zeros((n, t))
        full[rows] = val(ids)
        return full

    stored = np.zeros((n, t))
    stored[bn] = np.maximum(x[model.c_st] - x[model.c_borrow][:, None], 0.0)
    return {
        "pv_used_kw": np.minimum(val(model.c_pv), problem.pv_available_kw),
        "battery_charge_kw": scatter(model.c_ch, bn),
        "battery_discharge_kw": scatter(model.c_dis, bn),
        "stored_kwh": stored,
        "grid_import_kw": val(model.c_imp),
        "grid_export_kw": val(model.c_exp),
        "load_shed_kw": np.minimum(val(model.c_shed), problem.load_kw),
        "surplus_spilled_kw": scatter(model.c_spill, spill),
        "link_fwd_kw": val(model.c_fwd),
        "link_bwd_kw": val(model.c_bwd),
    }
