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
        re-solve from HiGHS's previous basis; a freshly built LP is first solved with the
        links closed, whose basis starts the real solve.

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
            model.update(problem, binaries, stored0)
            if self.warm_start and model.is_mip:
                # A MIP start gives HiGHS an incumbent at once, so a time-out still has one.
                start = (_shifted(model, self._last_values) if self._last_values is not None
                         else model.columns_from(problem, fallback_plan(problem)))
                model.set_start(start)
            result = model.run(budget_s, opts.mip_rel_gap, opts.threads)
            result["solver_s"] += first_solver_s
        except Exception as exc:  # the plan is a value: any solver failure becomes the fallback
            self._model, self._last_values = None, None
            return _fallback(problem, f"solver failed: {type(exc).__name__}: {exc}", start_s)
        if result["values"] is None:
            self._last_values = None
            return _fallback(problem, f"no solution from HiGHS ({result['status']})", start_s)
        self._last_values = result["values"]
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

    def _model_for(self, problem: DispatchProblem, binaries: dict) -> HighsModel:
        key = shape_key(problem, binaries)
        if self._model is None or self._model.key != key:
            build_start_s = time.perf_counter()
            self._model = HighsModel(problem, binaries)
            self._last_values = None
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
