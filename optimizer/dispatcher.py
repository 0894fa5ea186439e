"""Solve a ``DispatchProblem`` on a persistent HiGHS model: update, solve, extract.

The outcome is always a ``DispatchPlan``: optimal, the incumbent at the time limit, or the
rule-based fallback plan when the solver gives nothing usable.  Nothing here raises for data
reasons, reads a clock for decisions, touches files or logs.

Grey/green modes are settled by a dive rather than by branching: the model is solved with
the modes relaxed, the node-steps that mix grid energy with net sending
(:meth:`HighsModel.mode_conflicts`) are fixed to the use that dominates there, and the model
is solved again from the previous basis until no step mixes.  Each fix only restricts, so the
dive ends, and its plan keeps every rule.  Node-steps whose mode the data already decides
(a node without a battery: green with a PV surplus, grey with a deficit) are fixed before
the first solve.  Measured on a 12-node ring over 96 steps with node-specific prices
(tests/optimizer/test_time_limit_per_solve.py), the dive took 10 LP solves and 0.27 s and
ended 0.2 % below the objective that HiGHS's branch-and-bound reached on lazily marked
binaries after 9 rounds and about 10 minutes; the relaxed first solve bounds the optimum from
below, and the plan's notes give that bound gap.
"""

from __future__ import annotations

import collections
import dataclasses
import time

import numpy as np

from optimizer.accounting import clamp_initial_stored, make_plan
from optimizer.fallback import fallback_plan
from optimizer.highs_model import MODE_TOL_KW, HighsModel, SolveResult
from optimizer.layout import Binaries, binaries_needed, shape_key
from optimizer.plan import DispatchPlan, PlanStatus, Termination
from optimizer.problem import DispatchProblem

__all__ = ["Dispatcher", "MAX_MODE_ROUNDS", "data_modes", "solve", "step_shift"]

#: Dive solves before every free mode is fixed at once [-].
MAX_MODE_ROUNDS = 40
#: From this dive round on, node-steps that use one side only are fixed along with the mixing
#: ones, so that mixing cannot keep moving to them (measured on a Misono day: 2-4 solves per
#: re-plan instead of 5-28, at no cost; fixed from the first round it sometimes ends worse
#: than the rule-based plan on small random problems).
ONE_SIDED_FROM_ROUND = 2
#: Largest roll of the horizon between two solves that :func:`step_shift` looks for [steps].
MAX_SHIFT_STEPS = 4


@dataclasses.dataclass
class _Slot:
    """A persistent model of one shape and its last solution (for warm starts)."""

    model: HighsModel
    last_values: np.ndarray | None = None
    last_problem: DispatchProblem | None = None


#: Models kept per dispatcher [-]: a rolling horizon alternates between shapes (a plan that
#: starts in the first or the second half of a 30-minute period has other period rows; one
#: that crosses a month end has other tier rows), and each keeps its own warm start.
MAX_MODELS = 4


@dataclasses.dataclass
class _Start:
    """Initial state and warm-start information of one solve."""

    stored0: np.ndarray
    grey0: np.ndarray
    shift: int
    began_s: float


class Dispatcher:
    """Holds the persistent model between cycles; rebuilds only when the shape changes.

    Parameters
    ----------
    all_binary : bool
        Naive formulation for benchmarks: every exclusivity and mode binary integer from the
        start, whether or not it changes the answer.
    warm_start : bool
        For a MILP, offer the previous solution shifted by the roll as MIP start (the fallback
        plan when there is none), so a time-out still has an incumbent.  LPs always re-solve
        from the previous basis: as it is when the horizon did not roll, moved by the roll
        (:func:`step_shift`) when it did, and then with primal simplex if the previous plan
        still fits every remaining step, else dual simplex.  A freshly built LP is first
        solved with the links closed, whose basis starts the real solve.

    Notes
    -----
    Measured on the 1,000-home synthetic block (``bench/optimizer.py``), a re-plan one step
    on costs about 15 s CPU of dual simplex from the unshifted basis, 11 s from the shifted
    basis, and under 1 s of primal simplex from the shifted basis when the state followed
    the plan and forecasts did not change.  Primal simplex from a basis whose plan no
    longer fits (new forecasts, drifted state) is far slower than dual, hence the check.
    """

    def __init__(self, all_binary: bool = False, warm_start: bool = True) -> None:
        self.all_binary = all_binary
        self.warm_start = warm_start
        self._slots: collections.OrderedDict[tuple, _Slot] = collections.OrderedDict()
        self._slot: _Slot | None = None
        #: Objective of the first (mode-relaxed) solve of the last call: a lower bound [JPY].
        self.relaxed_objective_jpy: float | None = None
        #: Seconds spent building the model in the last call [s] (0 when reused).
        self.last_build_s = 0.0
        #: Solves of the last call (mode rounds) [-].
        self.last_rounds = 0

    def solve(self, problem: DispatchProblem) -> DispatchPlan:
        """Plan the dispatch for ``problem``; never raises for solver or data reasons."""
        began_s = time.perf_counter()
        stored0, grey0, notes = clamp_initial_stored(problem)
        self.last_build_s, self.last_rounds = 0.0, 0
        try:
            binaries = binaries_needed(problem, self.all_binary)
            slot = self._slot_for(problem, binaries)
            shift = 0 if slot.last_problem is None else step_shift(slot.last_problem, problem)
            start = _Start(stored0, grey0, shift, began_s)
            result, model, solver_s = self._rounds(problem, start, binaries)
        except Exception as exc:  # the plan is a value: any solver failure becomes the fallback
            self._forget()
            return _fallback(problem, f"solver failed: {type(exc).__name__}: {exc}", began_s)
        if result.values is None:
            self._forget()
            return _fallback(problem, f"no solution from HiGHS ({result.detail})", began_s)
        slot.last_values, slot.last_problem = result.values, problem
        status = PlanStatus.OPTIMAL if result.optimal else PlanStatus.TIME_LIMIT_FEASIBLE
        plan = make_plan(problem, model.arrays(problem, result.values), status, notes,
                         termination=result.termination, mip_gap=result.mip_gap,
                         used_binaries=model.is_mip, solver_time_s=solver_s,
                         notes=(f"HiGHS: {result.detail}", self._dive_note(model, result)))
        if status is PlanStatus.TIME_LIMIT_FEASIBLE or self.last_rounds > 1:
            # An early incumbent, or a dive that fixed modes, can be worse than the rules;
            # never hand out the worse one.
            why = "time limit" if status is PlanStatus.TIME_LIMIT_FEASIBLE else "mode dive"
            rules = fallback_plan(problem, note=f"{why}: fallback beats the solver's plan "
                                  f"({plan.objective_jpy:.2f} JPY)")
            if rules.objective_jpy < plan.objective_jpy:
                plan = dataclasses.replace(rules, termination=result.termination)
        return dataclasses.replace(plan, total_time_s=time.perf_counter() - began_s)

    def _dive_note(self, model: HighsModel, result: SolveResult) -> str:
        final = model.objective_jpy(result.values)
        bound = self.relaxed_objective_jpy
        gap = (final - bound) / max(abs(final), 1.0) if bound is not None else float("nan")
        return f"mode dive: {self.last_rounds} solves, {gap:.2%} above the relaxed bound"

    @property
    def _model(self) -> HighsModel | None:
        return None if self._slot is None else self._slot.model

    @property
    def _last_values(self) -> np.ndarray | None:
        return None if self._slot is None else self._slot.last_values

    def _forget(self) -> None:
        self._slots.clear()
        self._slot = None

    def _rounds(self, problem: DispatchProblem, start: _Start,
                binaries: Binaries) -> tuple[SolveResult, HighsModel, float]:
        """Solve with relaxed modes, fix the ones that mix, solve again, until none mixes.

        After :data:`MAX_MODE_ROUNDS` solves, or when time is up, every mode node-step left
        free is fixed to the use that dominates there, so the next solve is the last.
        """
        opts = problem.options
        fixed = data_modes(problem)
        model = self._slot.model
        solver_s, relaxed_jpy = 0.0, None
        if self.last_build_s > 0 and problem.n_links and not binaries.any:
            solver_s = _decoupled_start(model, problem, binaries, start, opts, fixed)
        while True:
            self.last_rounds += 1
            budget_s = opts.time_limit_s - (time.perf_counter() - start.began_s)
            primal = self._update(model, problem, binaries, start, fixed)
            if self.warm_start and model.is_mip:
                model.set_start(self._mip_start(model, problem, start.shift))
            result = model.run(max(budget_s, 1e-3), opts.mip_rel_gap, opts.threads, primal=primal)
            solver_s += result.solver_s
            if result.values is None:
                break
            if relaxed_jpy is None:
                relaxed_jpy = model.objective_jpy(result.values)
            conflicts = model.mode_conflicts(problem, result.values)
            if not conflicts.any():
                break
            out_of_time = time.perf_counter() - start.began_s >= opts.time_limit_s
            last = self.last_rounds >= MAX_MODE_ROUNDS or out_of_time
            fixed = _fixed_modes(model, problem, result.values, conflicts if not last else None,
                                 fixed, one_sided=self.last_rounds >= ONE_SIDED_FROM_ROUND)
        self.relaxed_objective_jpy = relaxed_jpy
        return result, model, solver_s

    def _mip_start(self, model: HighsModel, problem: DispatchProblem, shift: int) -> np.ndarray:
        """The previous solution moved by the roll, or the fallback plan's columns."""
        if self._last_values is not None and len(self._last_values) == model.layout.cols.count:
            return model.shifted(self._last_values, max(shift, 1))
        return model.columns_from(problem, fallback_plan(problem))

    def _update(self, model: HighsModel, problem: DispatchProblem, binaries: Binaries,
                start: _Start, fixed: np.ndarray | None) -> bool:
        """Push the data; for an LP re-solve after a roll, move the basis with the horizon.

        Returns whether to use primal simplex: when the previous plan still fits every
        remaining step (data rolled, state as planned), primal simplex only repairs the new
        steps, in a few pivots.  Otherwise (new forecasts, drifted state) the shifted basis
        is still nearly dual feasible and dual simplex is far faster than primal.
        """
        lp_resolve = (self.last_rounds == 1 and self.last_build_s == 0 and not binaries.any
                      and self._last_values is not None and start.shift > 0)
        basis = model.basis_status() if lp_resolve else None
        model.update(problem, binaries, start.stored0, start.grey0, fixed)
        if basis is None:
            return False
        model.set_shifted_basis(*basis, start.shift)
        return model.shifted_values_fit(self._last_values, start.shift)

    def _slot_for(self, problem: DispatchProblem, binaries: Binaries) -> _Slot:
        """The model of this problem's shape (built and kept when new)."""
        key = shape_key(problem, binaries)
        slot = self._slots.get(key)
        if slot is None:
            build_start_s = time.perf_counter()
            slot = _Slot(HighsModel(problem, binaries))
            self.last_build_s += time.perf_counter() - build_start_s
            self._slots[key] = slot
            while len(self._slots) > MAX_MODELS:
                self._slots.popitem(last=False)
        self._slots.move_to_end(key)
        self._slot = slot
        return slot


def data_modes(problem: DispatchProblem) -> np.ndarray:
    """(N, T) modes the data decides (1 grey, 0 green, NaN free), exactly.

    A node without a battery and with a deficit (PV below its load) can send only by
    importing, so it is grey.  One with a surplus has no use for import when importing costs
    something and export pays less than import: it is green.  Islanded steps are free (the
    mode rows relax there).
    """
    bat, grid = problem.battery, problem.grid
    no_battery = (bat.soc_max_kwh <= 0) & (bat.charge_max_kw <= 0) & (bat.discharge_max_kw <= 0)
    surplus = problem.pv_available_kw >= problem.load_kw.sum(axis=1)
    plain = ((grid.import_price_jpy_per_kwh > 0)
             & (grid.export_price_jpy_per_kwh < grid.import_price_jpy_per_kwh))
    out = np.where(surplus, np.where(plain, 0.0, np.nan), 1.0)
    keep = no_battery[:, None] & grid.available[None, :]
    return np.where(keep, out, np.nan)


def _fixed_modes(model: HighsModel, problem: DispatchProblem, values: np.ndarray,
                 conflicts: np.ndarray | None, fixed: np.ndarray, one_sided: bool) -> np.ndarray:
    """``fixed`` with each mixing node-step (every free one when ``conflicts`` is None) fixed
    to the use that dominates there: grey (1) where it drew at least as much grid energy as
    it sent or stored green, else green (0)."""
    out = fixed.copy()
    grey, green = model.mode_uses(problem, values)
    where = np.isnan(fixed) if conflicts is None else conflicts
    out[where] = np.where(grey[where] >= green[where], 1.0, 0.0)
    if conflicts is not None and one_sided:
        # Steps that use one side only keep it: mixing cannot move there in the next solve.
        tol = MODE_TOL_KW
        free = np.isnan(out) & problem.grid.available[None, :]
        out[free & (grey > tol)] = 1.0
        out[free & (green > tol)] = 0.0
    return out


def _decoupled_start(model: HighsModel, problem: DispatchProblem, binaries: Binaries,
                     start: _Start, opts, fixed: np.ndarray) -> float:
    """Solve the fresh LP once with every link closed and keep its basis; return HiGHS time [s].

    Without links the LP falls apart into one small problem per node, which dual simplex
    solves in about a third of the time; the real LP then starts from that basis.
    """
    links = dataclasses.replace(problem.links, capacity_kw=np.zeros(problem.n_links))
    model.update(dataclasses.replace(problem, links=links), binaries, start.stored0, start.grey0,
                 fixed)
    return model.run(opts.time_limit_s, opts.mip_rel_gap, opts.threads).solver_s


def step_shift(before: DispatchProblem, after: DispatchProblem) -> int:
    """By how many steps the horizon rolled from ``before`` to ``after`` (0 if it did not).

    The problem carries no clock, so the roll is read off the data: the shift ``k`` for which
    ``after``'s first steps best match ``before``'s steps from ``k`` on (PV, load and import
    price).  A wrong guess costs only solver time, never a different answer: the result only
    chooses the starting basis and the carried integer marks.
    """
    n_steps = after.n_steps
    if before.n_steps != n_steps or before.n_nodes != after.n_nodes:
        return 0
    pairs = [(before.pv_available_kw, after.pv_available_kw), (before.load_kw, after.load_kw),
             (before.grid.import_price_jpy_per_kwh, after.grid.import_price_jpy_per_kwh)]
    if before.load_kw.shape != after.load_kw.shape:
        return 0
    errors = [sum(float(np.mean(np.abs(new[..., :n_steps - k] - old[..., k:])))
                  for old, new in pairs) for k in range(min(MAX_SHIFT_STEPS, n_steps - 1) + 1)]
    best = int(np.argmin(errors))
    # A roll must match clearly better than no roll: a wrong shifted start is slow to repair.
    return best if errors[best] < 0.5 * errors[0] else 0


def solve(problem: DispatchProblem) -> DispatchPlan:
    """One-off solve with a fresh :class:`Dispatcher`."""
    return Dispatcher().solve(problem)


def _fallback(problem: DispatchProblem, why: str, began_s: float) -> DispatchPlan:
    plan = fallback_plan(problem, note=why)
    return dataclasses.replace(plan, total_time_s=time.perf_counter() - began_s,
                               termination=Termination.NOT_SOLVED)
