"""The dispatch model as a persistent HiGHS matrix, built once per shape and updated in place.

The formulation (:mod:`optimizer.formulation`) is handed to HiGHS directly through highspy's
array API (``passModel`` with a CSC matrix, then ``changeColsBounds`` / ``changeColsCost`` /
``changeRowsBounds`` / ``changeColsIntegrality`` every cycle), because translating an
equivalent Pyomo model takes tens of seconds at 200+ homes.  Between cycles the basis can be
moved with the rolling horizon (:meth:`HighsModel.set_shifted_basis`) and the simplex variant
chosen per solve.  The same equations are written in Pyomo in :mod:`optimizer.reference`,
which the tests use as the exact reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
from highspy.highs import _Highs
import numpy as np

from optimizer.accounting import node_net_send_kw, period_peaks_kw, tier_fill_kwh
from optimizer.basis import BASIC, LOWER, STATUS, before_last, nonbasic_side, shift_blocks, within
from optimizer.formulation import NOT_STEP_COLS, NOT_STEP_ROWS, Layout
from optimizer.layout import Binaries, shape_key
from optimizer.plan import DispatchPlan, PlanArrays, Termination
from optimizer.problem import DispatchProblem

__all__ = ["HighsModel", "SolveResult"]

_INF = highspy.kHighsInf
#: Flows below this are solver noise when telling grey from green use [kW].
MODE_TOL_KW = 1e-5

_TERMINATION = {
    highspy.HighsModelStatus.kOptimal: Termination.OPTIMAL,
    highspy.HighsModelStatus.kTimeLimit: Termination.TIME_LIMIT,
    highspy.HighsModelStatus.kIterationLimit: Termination.ITERATION_LIMIT,
    highspy.HighsModelStatus.kInfeasible: Termination.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: Termination.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: Termination.UNBOUNDED,
    highspy.HighsModelStatus.kSolveError: Termination.ERROR,
    highspy.HighsModelStatus.kModelError: Termination.ERROR,
}


@dataclass(frozen=True, eq=False)
class SolveResult:
    """What one HiGHS run gave.

    Attributes
    ----------
    termination : Termination
    detail : str
        HiGHS's own status text.
    values : ndarray or None
        Column values when a feasible solution exists.
    mip_gap : float
        Relative MIP gap [-] (0 for an LP, inf when unknown).
    solver_s : float
        HiGHS run time of this solve [s].
    """

    termination: Termination
    detail: str
    values: np.ndarray | None
    mip_gap: float
    solver_s: float

    @property
    def optimal(self) -> bool:
        return self.termination is Termination.OPTIMAL


def _changed(before: np.ndarray | None, after: np.ndarray) -> np.ndarray:
    """Mask of entries that differ (all of them when there is no previous push)."""
    if before is None:
        return np.ones(after.shape, dtype=bool)
    return before != after



def quiet_highs() -> _Highs:
    """A HiGHS solver that never writes to stdout (not even its banner).

    ``highspy.Highs()`` calls a solver method in its constructor (it enables callbacks), which
    prints the "Running HiGHS ..." banner before ``output_flag`` can be set. The solver object
    itself (its base class) takes the options first; nothing here uses the Python callbacks.
    """
    highs = _Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("log_to_console", False)
    return highs


class HighsModel:
    """A persistent HiGHS model for one problem shape.

    Parameters
    ----------
    problem : DispatchProblem
        Any problem of the shape; its data is loaded by :meth:`update`.
    binaries : Binaries
        A family gets exclusivity columns if any entry is True.
    """

    def __init__(self, problem: DispatchProblem, binaries: Binaries) -> None:
        self.key = shape_key(problem, binaries)
        self.layout = Layout(problem, binaries)
        self.masks = self.layout.masks
        self.highs = quiet_highs()
        self.is_mip = False
        self._pushed: dict[str, np.ndarray] = {}
        #: Column values and row activities of the last solve with a solution.
        self._activity: tuple[np.ndarray, np.ndarray] | None = None
        self._pass_model()

    def _pass_model(self) -> None:
        lay = self.layout
        mat = lay.matrix
        n_col, n_row = lay.cols.count, lay.rows.count
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_col, n_row
        lp.col_cost_ = np.zeros(n_col)
        lp.col_lower_ = np.zeros(n_col)
        lp.col_upper_ = np.full(n_col, _INF)
        lp.row_lower_ = np.full(n_row, -_INF)
        lp.row_upper_ = np.full(n_row, _INF)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = mat.indptr.astype(np.int32)
        lp.a_matrix_.index_ = mat.indices.astype(np.int32)
        lp.a_matrix_.value_ = mat.data
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_col, n_row
        self.highs.passModel(lp)
        self._matrix = mat.tocsr()  # for checking a shifted start against new data
        self._all_cols = np.arange(n_col, dtype=np.int32)
        self._all_rows = np.arange(n_row, dtype=np.int32)
        z_blocks = list(lay.c_z.values()) + [lay.c_mode]
        self._z_cols = np.concatenate([z.ravel() for z in z_blocks]).astype(np.int32)

    # ----------------------------------------------------------------- updating
    def update(self, problem: DispatchProblem, binaries: Binaries, stored0_kwh: np.ndarray,
               grey0_kwh: np.ndarray, mode_fixed: np.ndarray | None = None) -> None:
        """Push this cycle's data into the persistent model (bounds, costs, row sides, types).

        Parameters
        ----------
        problem : DispatchProblem
            Data of this cycle; must have the model's shape (``shape_key``).
        binaries : Binaries
            Which exclusivity and mode binaries are integer.
        stored0_kwh, grey0_kwh : ndarray, shape (N,)
            Initial stored and grid-origin stored energy, already clamped [kWh].
        mode_fixed : ndarray, shape (N, T), optional
            0 or 1 to fix a node's mode in a step, NaN to leave it free.
        """
        lay = self.layout
        lb, ub = lay.bounds(problem)
        if mode_fixed is not None:
            fixed = np.asarray(mode_fixed, float)[self.masks.mode]
            known = ~np.isnan(fixed)
            lb[lay.c_mode[known]] = ub[lay.c_mode[known]] = fixed[known]
        cost, offset = lay.costs(problem)
        self._offset = offset
        rl, ru = lay.row_bounds(problem, stored0_kwh, grey0_kwh)
        h, last = self.highs, self._pushed
        # Push only what changed: HiGHS spends microseconds per entry on every change call.
        changed = _changed(last.get("lb"), lb) | _changed(last.get("ub"), ub)
        h.changeColsBounds(int(changed.sum()), self._all_cols[changed], lb[changed], ub[changed])
        changed = _changed(last.get("cost"), cost)
        h.changeColsCost(int(changed.sum()), self._all_cols[changed], cost[changed])
        h.changeObjectiveOffset(offset)
        changed = _changed(last.get("rl"), rl) | _changed(last.get("ru"), ru)
        h.changeRowsBounds(int(changed.sum()), self._all_rows[changed], rl[changed], ru[changed])
        self._pushed = {"lb": lb, "ub": ub, "cost": cost, "rl": rl, "ru": ru}
        self._push_integrality(binaries)

    def _push_integrality(self, binaries: Binaries) -> None:
        bn = self.masks.battery
        flags = [binaries.battery[bn] if fam == "battery" else getattr(binaries, fam)
                 for fam in self.layout.c_z]
        flags.append(binaries.mode[self.masks.mode])
        integer = np.concatenate([f.ravel() for f in flags]) if flags else np.zeros(0, bool)
        types = np.where(integer, highspy.HighsVarType.kInteger.value,
                         highspy.HighsVarType.kContinuous.value).astype(np.uint8)
        if len(self._z_cols):
            self.highs.changeColsIntegrality(len(self._z_cols), self._z_cols, types)
        self.is_mip = bool(integer.any())

    # ----------------------------------------------------------------- solving
    def set_start(self, col_values: np.ndarray) -> None:
        """Offer a full column vector as a MIP start (ignored by HiGHS if infeasible)."""
        self.highs.setSolution(len(self._all_cols), self._all_cols, col_values)

    def run(self, time_limit_s: float, mip_rel_gap: float, threads: int,
            primal: bool = False) -> SolveResult:
        """Solve with the pushed data; ``primal`` selects primal simplex (for a start that is
        nearly primal feasible, such as a shifted basis), otherwise HiGHS's dual simplex."""
        h = self.highs
        h.setOptionValue("simplex_strategy", 4 if primal else 1)
        # HiGHS checks time_limit against its run clock, which keeps counting across runs on
        # one Highs object: the per-solve budget starts from the clock's current reading.
        h.setOptionValue("time_limit", h.getRunTime() + float(time_limit_s))
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        h.setOptionValue("threads", int(threads))
        before_s = h.getRunTime()
        h.run()
        solver_s = h.getRunTime() - before_s
        status = h.getModelStatus()
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        solution = h.getSolution()
        values = np.asarray(solution.col_value) if has_solution else None
        self._activity = (values, np.asarray(solution.row_value)) if has_solution else None
        gap = float(info.mip_gap) if self.is_mip else 0.0
        return SolveResult(_TERMINATION.get(status, Termination.OTHER),
                           h.modelStatusToString(status), values,
                           gap if np.isfinite(gap) else float("inf"), solver_s)

    def objective_jpy(self, values: np.ndarray) -> float:
        """Objective of column values under the pushed costs (with the offset) [JPY].

        An elementwise product and numpy's own sum, not ``values @ cost``: above about 10,000
        columns OpenBLAS splits a dot product over its worker threads, which then spin and
        take a core from HiGHS (on a 2-core box about a quarter of the solve time).
        """
        return float((values * self._pushed["cost"]).sum()) + self._offset

    # ----------------------------------------------------------------- warm starts
    def basis_status(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The basis of the last solve as ``(column, row)`` status codes, or None.

        Read as the basic index list plus the side each nonbasic entry sits at: converting
        ``getBasis()`` entry by entry costs more than the warm solve it serves.
        """
        status, basic = self.highs.getBasicVariables()
        last = self._pushed
        if status != highspy.HighsStatus.kOk or self._activity is None or "lb" not in last:
            return None
        col_value, row_value = self._activity
        cols = nonbasic_side(col_value, last["lb"], last["ub"])
        rows = nonbasic_side(row_value, last["rl"], last["ru"])
        basic = np.asarray(basic)
        cols[basic[basic >= 0]] = BASIC
        rows[-1 - basic[basic < 0]] = BASIC
        return cols, rows

    def set_shifted_basis(self, col_status: np.ndarray, row_status: np.ndarray,
                          steps: int) -> None:
        """Start the next solve from a basis moved ``steps`` steps earlier.

        Every step-indexed column and row takes the status of the same entity ``steps`` steps
        later; the new last steps repeat the old last one.  The count of basic entries is then
        restored (a basis needs exactly one per row) with the row slacks of the last step.
        """
        lay = self.layout
        cols = shift_blocks(col_status, lay.cols.blocks, steps, NOT_STEP_COLS)
        rows = shift_blocks(row_status, lay.rows.blocks, steps, NOT_STEP_ROWS)
        last = np.concatenate([blk.ids()[..., -1].ravel() for name, blk in lay.rows.blocks.items()
                               if blk.shape and name not in NOT_STEP_ROWS])
        missing = lay.rows.count - int(np.sum(cols == BASIC) + np.sum(rows == BASIC))
        if missing > 0:
            candidates = last[rows[last] != BASIC]
            rows[candidates[:missing]] = BASIC
        elif missing < 0:
            candidates = last[rows[last] == BASIC]
            # a slack made nonbasic sits at a finite side; HiGHS moves it if that is wrong
            rows[candidates[:-missing]] = LOWER
        basis = highspy.HighsBasis()
        basis.col_status = list(map(STATUS.__getitem__, cols.tolist()))
        basis.row_status = list(map(STATUS.__getitem__, rows.tolist()))
        basis.valid = True
        self.highs.setBasis(basis)

    def shifted(self, values: np.ndarray, steps: int) -> np.ndarray:
        """Column values moved ``steps`` steps earlier, the last step repeated."""
        return shift_blocks(values, self.layout.cols.blocks, steps, NOT_STEP_COLS)

    def shifted_values_fit(self, values: np.ndarray, steps: int) -> bool:
        """Whether ``values`` moved ``steps`` steps earlier satisfy the pushed data up to the
        new last steps: then only those steps need work and primal simplex suits the start.

        Call after :meth:`update`.  Bounds and rows are checked to 1e-6 (relative above 1).
        """
        lay = self.layout
        x = self.shifted(values, steps)
        last = self._pushed
        old_cols = before_last(lay.cols.blocks, lay.cols.count, steps, NOT_STEP_COLS)
        old_rows = before_last(lay.rows.blocks, lay.rows.count, steps, NOT_STEP_ROWS)
        activity = self._matrix @ x
        return (within(x[old_cols], last["lb"][old_cols], last["ub"][old_cols])
                and within(activity[old_rows], last["rl"][old_rows], last["ru"][old_rows]))

    # ----------------------------------------------------------------- reading back
    def arrays(self, problem: DispatchProblem, x: np.ndarray) -> PlanArrays:
        """Full-size, non-negative plan arrays from the column values."""
        lay, m = self.layout, self.masks
        n, t = problem.n_nodes, problem.n_steps

        def val(ids: np.ndarray) -> np.ndarray:
            return np.maximum(x[ids], 0.0)  # HiGHS may return -1e-12 for a zero

        def nodes(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
            full = np.zeros((n, t))
            full[rows] = val(ids)
            return full

        bn = m.battery
        stored = np.zeros((n, t))
        stored[bn] = np.maximum(x[lay.c_st] - x[lay.c_borrow][:, None], 0.0)
        grey = np.minimum(nodes(lay.c_str, bn), stored)
        charge, discharge = nodes(lay.c_ch, bn), nodes(lay.c_dis, bn)
        return PlanArrays(
            pv_used_kw=np.minimum(val(lay.c_pv), problem.pv_available_kw),
            battery_charge_kw=charge, battery_discharge_kw=discharge,
            battery_charge_grey_kw=np.minimum(nodes(lay.c_chr, bn), charge),
            battery_discharge_grey_kw=np.minimum(nodes(lay.c_disr, bn), discharge),
            stored_kwh=stored, stored_grey_kwh=grey,
            grid_import_kw=val(lay.c_imp), grid_export_kw=val(lay.c_exp),
            load_shed_kw=np.minimum(val(lay.c_shed), problem.load_kw),
            surplus_spilled_kw=nodes(lay.c_spill, m.spill),
            link_fwd_kw=val(lay.c_fwd), link_bwd_kw=val(lay.c_bwd))

    def mode_uses(self, problem: DispatchProblem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, T) grey use (import + grid-origin discharge) and green use (net sending +
        green charging) of the mode nodes [kW]; zero elsewhere."""
        lay, m = self.layout, self.masks
        n, t = problem.n_nodes, problem.n_steps
        grey, green = np.zeros((n, t)), np.zeros((n, t))
        grey[m.mode] = np.maximum(x[lay.c_imp[m.mode]], 0.0)
        send = node_net_send_kw(problem, x[lay.c_fwd], x[lay.c_bwd])
        green[m.mode] = np.maximum(send[m.mode], 0.0)
        bn = m.battery[m.mode_battery]
        grey[bn] += np.maximum(x[lay.c_disr[m.mode_battery]], 0.0)
        green[bn] += np.maximum(x[lay.c_ch[m.mode_battery]] - x[lay.c_chr[m.mode_battery]], 0.0)
        on = problem.grid.available[None, :]  # islanded steps: the rule is off
        return grey * on, green * on

    def mode_conflicts(self, problem: DispatchProblem, x: np.ndarray) -> np.ndarray:
        """(N, T) mask of mode nodes and steps whose values mix grey and green use."""
        grey, green = self.mode_uses(problem, x)
        return (grey > MODE_TOL_KW) & (green > MODE_TOL_KW)

    def columns_from(self, problem: DispatchProblem, plan: DispatchPlan) -> np.ndarray:
        """The column vector of a ``DispatchPlan`` (e.g. the fallback), for a MIP start."""
        lay, m = self.layout, self.masks
        x = np.zeros(lay.cols.count)
        bn = m.battery
        flow = plan.link_flow_kw
        x[lay.c_pv], x[lay.c_imp], x[lay.c_exp] = plan.pv_used_kw, plan.grid_import_kw, plan.grid_export_kw
        x[lay.c_shed] = plan.load_shed_kw
        x[lay.c_ch], x[lay.c_dis] = plan.battery_charge_kw[bn], plan.battery_discharge_kw[bn]
        x[lay.c_chr] = plan.battery_charge_grey_kw[bn]
        x[lay.c_disr] = plan.battery_discharge_grey_kw[bn]
        borrow = np.maximum(problem.battery.soc_min_kwh[bn] - plan.stored_kwh[bn].min(axis=1), 0.0)
        x[lay.c_borrow] = borrow
        x[lay.c_st] = plan.stored_kwh[bn] + borrow[:, None]
        x[lay.c_str] = plan.stored_grey_kwh[bn]
        x[lay.c_spill] = plan.surplus_spilled_kw[m.spill]
        fwd, bwd = np.maximum(flow, 0.0), np.maximum(-flow, 0.0)
        x[lay.c_fwd], x[lay.c_bwd] = fwd, bwd
        x[lay.c_rshort] = np.clip(problem.reserve_kwh - plan.stored_kwh.sum(axis=0), 0.0,
                                  problem.reserve_kwh)
        x[lay.c_peak] = period_peaks_kw(problem, plan.grid_import_kw)[m.demand]
        x[lay.c_tierx] = tier_fill_kwh(problem, plan.grid_import_kw)[m.tiered]
        first = {"battery": lay.c_ch, "grid": lay.c_imp, "link": lay.c_fwd}
        for fam, z in lay.c_z.items():
            x[z] = (x[first[fam]] > 0).astype(float)
        send = node_net_send_kw(problem, fwd, bwd)
        green_use = send > MODE_TOL_KW
        x[lay.c_mode] = (~green_use[m.mode]).astype(float)
        return x

