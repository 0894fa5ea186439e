"""The dispatch model as a HiGHS matrix, built once per shape and updated in place.

The production formulation is handed to HiGHS directly through highspy's array API
(``passModel`` with a CSC matrix, then ``changeColsBounds`` / ``changeColsCost`` /
``changeRowsBounds`` / ``changeColsIntegrality`` every cycle), because translating an
equivalent Pyomo model takes tens of seconds at 200+ homes.  Between cycles the basis can be
moved with the rolling horizon (:meth:`HighsModel.set_shifted_basis`, read back cheaply by
:meth:`HighsModel.basis_status`) and the simplex variant chosen per solve.  The same
equations are written in Pyomo in :mod:`optimizer.reference`, which the tests use as the
exact reference.

Constraint families (``dt`` = step length [h]; all split variables >= 0):

* node balance ``pv + imp - exp + dis - ch + sum_l(in) - sum_l(out) + sum_k shed - spill
  = sum_k load``  for each node and step (supply-positive: supply on the left);
  link terms: ``fwd`` leaves ``from_node`` and arrives as ``eta * fwd`` at ``to_node``,
  ``bwd`` the other way round; net flow ``fwd - bwd``, loss ``(1 - eta)(fwd + bwd)``.
* PV curtailment ``0 <= pv <= pv_available`` (``pv = pv_available`` if not curtailable).
* battery dynamics ``st_t = st_{t-1} + eta_c dt ch_t - dt dis_t / eta_d`` with
  ``st_{-1} = stored0 + borrow``, ``stored0`` the measured stored energy clamped to
  ``[0, soc_max]``; ``0 <= ch <= charge_max``, ``0 <= dis <= discharge_max``.
* soft SoC floor: the model variable ``st`` is kept in ``[soc_min, soc_max]`` and the real
  stored energy is ``st - borrow`` with one ``0 <= borrow <= soc_min`` per battery, entering
  the first dynamics row; so the energy below ``soc_min`` (a measured state already below it,
  or an emergency dip) costs ``soc_below_min_jpy_per_kwh`` once per kWh of the deepest dip.
  (A slack per step would double the rows of the model for a rarely used feature.)
* soft block reserve ``sum_b (st_{b,t} - borrow_b) + res_short_t >= reserve_t`` in
  grid-connected steps.
* grid limits ``imp <= import_limit * available_t``, ``exp <= export_limit * available_t``
  (so zero in islanded steps); shedding ``0 <= shed_k <= load_k``.
* no battery export (FIT meter) ``exp <= pv`` where ``grid_export_allowed`` is False.
* demand charge ``peak >= imp_t``, ``peak >= peak_import_so_far``.
* exclusivity, only where simultaneous opposite flows could pay (see
  :func:`binaries_needed`): ``ch <= cmax z``, ``dis <= dmax (1 - z)``; likewise import/export
  with the connection limits and link directions with the link capacity as big-M (the
  tightest valid values: each is the variable's own upper bound).

Objective [JPY], minimised: ``sum (p_imp + tie) imp dt - p_exp exp dt + wear dis dt
+ tie ch dt + voll_k shed_k dt + pen_spill spill dt + tie (fwd + bwd) dt + pen_res res_short``
``+ (pen_soc + value) borrow - value st_end + charge (peak - peak_so_far)``; the parts are
reported by :func:`optimizer.accounting.objective_parts`.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.problem import DispatchProblem

__all__ = ["HighsModel", "binaries_needed", "shape_key"]

_INF = highspy.kHighsInf
#: Basis status members indexed by their code (kLower 0, kBasic 1, kUpper 2, kZero 3, ...).
_STATUS = sorted(highspy.HighsBasisStatus.__members__.values(), key=lambda m: m.value)
_BASIC = highspy.HighsBasisStatus.kBasic.value
_LOWER = highspy.HighsBasisStatus.kLower.value
_UPPER = highspy.HighsBasisStatus.kUpper.value
_ZERO = highspy.HighsBasisStatus.kZero.value


def _nonbasic_side(value: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Status code of each entry as if nonbasic: at its nearer finite bound, else zero."""
    near_upper = np.isfinite(upper) & (~np.isfinite(lower) | (upper - value < value - lower))
    out = np.where(near_upper, _UPPER, _LOWER).astype(np.int8)
    out[~np.isfinite(lower) & ~np.isfinite(upper)] = _ZERO
    return out


def _within(value: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        tol_lo = 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(lower), lower, 0.0)))
        tol_up = 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(upper), upper, 0.0)))
        return bool(np.all(value >= lower - tol_lo) and np.all(value <= upper + tol_up))


def _before_last(blocks: dict, count: int, steps: int, skip: tuple) -> np.ndarray:
    """Indices of every entry except the last ``steps`` steps of the step-indexed blocks."""
    keep = np.ones(count, dtype=bool)
    for name, block in blocks.items():
        if name not in skip and block.shape:
            keep[block.ids()[..., block.shape[-1] - steps:].ravel()] = False
    return np.flatnonzero(keep)


def _shift_blocks(status: np.ndarray, blocks: dict, steps: int, skip: tuple) -> np.ndarray:
    """Copy of ``status`` with every step-indexed block moved ``steps`` steps earlier."""
    out = status.copy()
    for name, block in blocks.items():
        if name in skip or not block.shape:
            continue
        ids = block.ids()
        prev = status[ids]
        tail = np.repeat(prev[..., -1:], steps, axis=-1)
        out[ids] = np.concatenate([prev[..., steps:], tail], axis=-1)
    return out


@dataclass(frozen=True)
class _Index:
    """Column or row index block: ``start`` and the block's shape."""

    start: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def ids(self) -> np.ndarray:
        return self.start + np.arange(self.size).reshape(self.shape)


class _Allocator:
    def __init__(self) -> None:
        self.count = 0
        self.blocks: dict[str, _Index] = {}

    def add(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        block = _Index(self.count, shape)
        self.blocks[name] = block
        self.count += block.size
        return block.ids()


def binaries_needed(problem: DispatchProblem, all_binary: bool = False) -> dict[str, np.ndarray]:
    """Where exclusivity binaries change the answer.

    Simultaneous charge and discharge (or opposite link flows) only burns energy; that pays
    only where energy has negative value somewhere in the horizon: a negative import price in a
    connected step, or PV that cannot be curtailed.  Simultaneous import and export pays only
    where the export price is at least the import price at that node and step.

    Returns
    -------
    dict
        ``"battery"`` (N, T), ``"grid"`` (N, T), ``"link"`` (L, T) boolean masks.
    """
    n, t, n_links = problem.n_nodes, problem.n_steps, problem.n_links
    if all_binary:
        return {"battery": np.ones((n, t), bool), "grid": np.ones((n, t), bool),
                "link": np.ones((n_links, t), bool)}
    grid = problem.grid
    connected = grid.available[None, :] & (grid.import_limit_kw[:, None] > 0)
    disposal = bool(np.any((grid.import_price_jpy_per_kwh < 0) & connected)) or bool(
        np.any(~problem.pv_curtailable & (problem.pv_available_kw.max(axis=1) > 0)))
    both = connected & (grid.export_limit_kw[:, None] > 0)
    arbitrage = both & (grid.export_price_jpy_per_kwh >= grid.import_price_jpy_per_kwh)
    return {"battery": np.full((n, t), disposal), "grid": arbitrage,
            "link": np.full((n_links, t), disposal)}


def _masks(problem: DispatchProblem) -> dict[str, np.ndarray]:
    bat = problem.battery
    has_battery = (bat.soc_max_kwh > 0) | (bat.charge_max_kw > 0) | (bat.discharge_max_kw > 0)
    return {
        "battery": np.flatnonzero(has_battery),
        "spill": np.flatnonzero(~problem.pv_curtailable),
        "fit": np.flatnonzero(~bat.grid_export_allowed & has_battery),
        "demand": np.flatnonzero(problem.grid.demand_charge_jpy_per_kw > 0),
    }


def shape_key(problem: DispatchProblem, binaries: dict[str, np.ndarray]) -> tuple:
    """Everything that fixes the matrix: sizes, masks, matrix coefficients, binary families."""
    bat, links, grid = problem.battery, problem.links, problem.grid
    parts = [problem.n_nodes, problem.n_steps, problem.n_tiers, problem.n_links, problem.step_s]
    parts += [m.tobytes() for m in _masks(problem).values()]
    arrays = [bat.charge_efficiency, bat.discharge_efficiency, links.from_node, links.to_node,
              links.efficiency]
    families = tuple(name for name, mask in binaries.items() if mask.any())
    # Big-M values live in the matrix, so they are part of the shape when binaries exist.
    if "battery" in families:
        arrays += [bat.charge_max_kw, bat.discharge_max_kw]
    if "grid" in families:
        arrays += [grid.import_limit_kw, grid.export_limit_kw]
    if "link" in families:
        arrays += [links.capacity_kw]
    parts += [a.tobytes() for a in arrays]
    return tuple(parts) + (families,)


def _changed(before: np.ndarray | None, after: np.ndarray) -> np.ndarray:
    """Mask of entries that differ (all of them when there is no previous push)."""
    if before is None:
        return np.ones(after.shape, dtype=bool)
    return before != after


class HighsModel:
    """A persistent HiGHS model for one problem shape.

    Parameters
    ----------
    problem : DispatchProblem
        Any problem of the shape; its data is loaded by :meth:`update`.
    binaries : dict
        Output of :func:`binaries_needed`: a family gets binary columns if any entry is True.
    """

    def __init__(self, problem: DispatchProblem, binaries: dict[str, np.ndarray]) -> None:
        self.key = shape_key(problem, binaries)
        self.masks = _masks(problem)
        self.families = self.key[-1]
        self.cols = _Allocator()
        self.rows = _Allocator()
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.is_mip = False
        self._pushed: dict[str, np.ndarray] = {}
        #: Column values and row activities of the last solve with a solution.
        self._activity: tuple[np.ndarray, np.ndarray] | None = None
        self._build(problem)

    # ----------------------------------------------------------------- building
    def _coef(self, rows, cols, vals) -> None:
        rows, cols = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        vals = np.broadcast_to(np.asarray(vals, dtype=float), rows.shape)
        self._entries.append((rows.ravel(), cols.ravel(), vals.ravel()))

    def _build(self, problem: DispatchProblem) -> None:
        n, t, k, n_links = problem.n_nodes, problem.n_steps, problem.n_tiers, problem.n_links
        m = self.masks
        b, s, f, d = len(m["battery"]), len(m["spill"]), len(m["fit"]), len(m["demand"])
        c = self.cols
        self.c_pv, self.c_imp, self.c_exp = c.add("pv", (n, t)), c.add("imp", (n, t)), c.add("exp", (n, t))
        self.c_shed = c.add("shed", (n, k, t))
        self.c_ch, self.c_dis = c.add("ch", (b, t)), c.add("dis", (b, t))
        self.c_st, self.c_borrow = c.add("st", (b, t)), c.add("borrow", (b,))
        self.c_spill = c.add("spill", (s, t))
        self.c_fwd, self.c_bwd = c.add("fwd", (n_links, t)), c.add("bwd", (n_links, t))
        self.c_rshort = c.add("rshort", (t,))
        self.c_peak = c.add("peak", (d,))
        self.c_z = {fam: c.add("z_" + fam, shape) for fam, shape in
                    (("battery", (b, t)), ("grid", (n, t)), ("link", (n_links, t)))
                    if fam in self.families}
        self._balance_rows(problem)
        self._battery_rows(problem)
        self._other_rows(problem)
        self._exclusivity_rows(problem)
        self._pass_model()

    def _balance_rows(self, problem: DispatchProblem) -> None:
        n, t = problem.n_nodes, problem.n_steps
        self.r_bal = self.rows.add("bal", (n, t))
        r = self.r_bal
        self._coef(r, self.c_pv, 1.0)
        self._coef(r, self.c_imp, 1.0)
        self._coef(r, self.c_exp, -1.0)
        self._coef(r[:, None, :], self.c_shed, 1.0)
        bn = self.masks["battery"]
        self._coef(r[bn], self.c_dis, 1.0)
        self._coef(r[bn], self.c_ch, -1.0)
        self._coef(r[self.masks["spill"]], self.c_spill, -1.0)
        links = problem.links
        eta = links.efficiency[:, None]
        self._coef(r[links.from_node], self.c_fwd, -1.0)
        self._coef(r[links.to_node], self.c_fwd, eta)
        self._coef(r[links.to_node], self.c_bwd, -1.0)
        self._coef(r[links.from_node], self.c_bwd, eta)

    def _battery_rows(self, problem: DispatchProblem) -> None:
        bn = self.masks["battery"]
        b, t = len(bn), problem.n_steps
        dt = problem.step_h
        bat = problem.battery
        self.r_dyn = self.rows.add("dyn", (b, t))
        self._coef(self.r_dyn, self.c_st, 1.0)
        self._coef(self.r_dyn[:, 1:], self.c_st[:, :-1], -1.0)
        self._coef(self.r_dyn, self.c_ch, -dt * bat.charge_efficiency[bn][:, None])
        self._coef(self.r_dyn, self.c_dis, dt / bat.discharge_efficiency[bn][:, None])
        self._coef(self.r_dyn[:, 0], self.c_borrow, -1.0)
        self.r_res = self.rows.add("res", (t,))
        self._coef(self.r_res[None, :], self.c_st, 1.0)
        self._coef(self.r_res[None, :], self.c_borrow[:, None], -1.0)
        self._coef(self.r_res, self.c_rshort, 1.0)

    def _other_rows(self, problem: DispatchProblem) -> None:
        t = problem.n_steps
        fit, dem = self.masks["fit"], self.masks["demand"]
        self.r_fit = self.rows.add("fit", (len(fit), t))
        self._coef(self.r_fit, self.c_exp[fit], 1.0)
        self._coef(self.r_fit, self.c_pv[fit], -1.0)
        self.r_peak = self.rows.add("peak", (len(dem), t))
        self._coef(self.r_peak, self.c_imp[dem], 1.0)
        self._coef(self.r_peak, self.c_peak[:, None], -1.0)

    def _exclusivity_rows(self, problem: DispatchProblem) -> None:
        bat, grid, links = problem.battery, problem.grid, problem.links
        bn = self.masks["battery"]
        pairs = {
            "battery": (self.c_ch, self.c_dis, bat.charge_max_kw[bn], bat.discharge_max_kw[bn]),
            "grid": (self.c_imp, self.c_exp, grid.import_limit_kw, grid.export_limit_kw),
            "link": (self.c_fwd, self.c_bwd, links.capacity_kw, links.capacity_kw),
        }
        self.r_excl: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for fam, z in self.c_z.items():
            first, second, m_first, m_second = pairs[fam]
            r1 = self.rows.add("x1_" + fam, first.shape)
            r2 = self.rows.add("x2_" + fam, second.shape)
            self._coef(r1, first, 1.0)            # first <= M1 z
            self._coef(r1, z, -m_first[:, None])
            self._coef(r2, second, 1.0)           # second <= M2 (1 - z)
            self._coef(r2, z, m_second[:, None])
            self.r_excl[fam] = (r2, np.broadcast_to(m_second[:, None], z.shape))

    def _pass_model(self) -> None:
        rows = np.concatenate([e[0] for e in self._entries])
        cols = np.concatenate([e[1] for e in self._entries])
        vals = np.concatenate([e[2] for e in self._entries])
        self._entries = []
        n_col, n_row = self.cols.count, self.rows.count
        mat = sp.csc_matrix((vals, (rows, cols)), shape=(n_row, n_col))
        mat.sum_duplicates()
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
        self._z_cols = (np.concatenate([z.ravel() for z in self.c_z.values()]).astype(np.int32)
                        if self.c_z else np.zeros(0, np.int32))

    # ----------------------------------------------------------------- updating
    def update(self, problem: DispatchProblem, binaries: dict[str, np.ndarray],
               stored0_kwh: np.ndarray) -> None:
        """Push this cycle's data into the persistent model (bounds, costs, row sides, types).

        Parameters
        ----------
        problem : DispatchProblem
            Data of this cycle; must have the model's shape (``shape_key``).
        binaries : dict
            Output of :func:`binaries_needed` for this data.
        stored0_kwh : ndarray, shape (N,)
            Initial stored energy, already clamped to ``[0, soc_max_kwh]`` [kWh].
        """
        lb, ub = self._col_bounds(problem)
        cost, offset = self._costs(problem)
        rl, ru = self._row_bounds(problem, stored0_kwh)
        h = self.highs
        # Push only what changed: HiGHS spends microseconds per entry on every change call.
        last = self._pushed
        changed = _changed(last.get("lb"), lb) | _changed(last.get("ub"), ub)
        cols = self._all_cols[changed]
        h.changeColsBounds(len(cols), cols, lb[changed], ub[changed])
        changed = _changed(last.get("cost"), cost)
        cols = self._all_cols[changed]
        h.changeColsCost(len(cols), cols, cost[changed])
        h.changeObjectiveOffset(offset)
        changed = _changed(last.get("rl"), rl) | _changed(last.get("ru"), ru)
        rows = self._all_rows[changed]
        h.changeRowsBounds(len(rows), rows, rl[changed], ru[changed])
        self._pushed = {"lb": lb, "ub": ub, "cost": cost, "rl": rl, "ru": ru}
        if len(self._z_cols):
            bn = self.masks["battery"]
            flags = [binaries[fam][bn] if fam == "battery" else binaries[fam]
                     for fam in self.c_z]
            integer = np.concatenate([f.ravel() for f in flags])
            types = np.where(integer, highspy.HighsVarType.kInteger.value,
                             highspy.HighsVarType.kContinuous.value).astype(np.uint8)
            h.changeColsIntegrality(len(self._z_cols), self._z_cols, types)
            self.is_mip = bool(integer.any())

    def _col_bounds(self, problem: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
        n_col = self.cols.count
        lb, ub = np.zeros(n_col), np.full(n_col, _INF)
        grid, bat, links = problem.grid, problem.battery, problem.links
        bn, spill, dem = self.masks["battery"], self.masks["spill"], self.masks["demand"]
        # Values below 1e-9 kW are numerical dust from forecasts; they only slow HiGHS down.
        pv = np.where(problem.pv_available_kw > 1e-9, problem.pv_available_kw, 0.0)
        ub[self.c_pv] = pv
        lb[self.c_pv] = np.where(problem.pv_curtailable[:, None], 0.0, pv)
        avail = grid.available[None, :].astype(float)
        ub[self.c_imp] = grid.import_limit_kw[:, None] * avail
        ub[self.c_exp] = grid.export_limit_kw[:, None] * avail
        ub[self.c_shed] = problem.load_kw
        ub[self.c_ch] = bat.charge_max_kw[bn][:, None]
        ub[self.c_dis] = bat.discharge_max_kw[bn][:, None]
        lb[self.c_st] = bat.soc_min_kwh[bn][:, None]
        ub[self.c_st] = bat.soc_max_kwh[bn][:, None]
        ub[self.c_borrow] = bat.soc_min_kwh[bn]
        ub[self.c_spill] = pv[spill]
        ub[self.c_fwd] = links.capacity_kw[:, None]
        ub[self.c_bwd] = links.capacity_kw[:, None]
        ub[self.c_rshort] = problem.reserve_kwh
        lb[self.c_peak] = grid.peak_import_so_far_kw[dem]
        for z in self.c_z.values():
            ub[z] = 1.0
        return lb, ub

    def _costs(self, problem: DispatchProblem) -> tuple[np.ndarray, float]:
        cost = np.zeros(self.cols.count)
        dt = problem.step_h
        grid, bat, pen = problem.grid, problem.battery, problem.penalties
        bn, dem = self.masks["battery"], self.masks["demand"]
        tie = pen.tie_break_jpy_per_kwh * dt
        cost[self.c_imp] = grid.import_price_jpy_per_kwh * dt + tie
        cost[self.c_exp] = -grid.export_price_jpy_per_kwh * dt
        cost[self.c_shed] = problem.value_of_lost_load_jpy_per_kwh[None, :, None] * dt
        cost[self.c_ch] = tie
        cost[self.c_dis] = bat.wear_cost_jpy_per_kwh[bn][:, None] * dt
        cost[self.c_st[:, -1]] = -bat.terminal_value_jpy_per_kwh[bn]
        # real stored energy is st - borrow, so the terminal credit applies to borrow too
        cost[self.c_borrow] = pen.soc_below_min_jpy_per_kwh + bat.terminal_value_jpy_per_kwh[bn]
        cost[self.c_spill] = pen.surplus_spill_jpy_per_kwh * dt
        cost[self.c_fwd] = tie
        cost[self.c_bwd] = tie
        cost[self.c_rshort] = np.where(grid.available, pen.reserve_shortfall_jpy_per_kwh, 0.0)
        charge = grid.demand_charge_jpy_per_kw[dem]
        cost[self.c_peak] = charge
        offset = -float(np.sum(charge * grid.peak_import_so_far_kw[dem]))
        return cost, offset

    def _row_bounds(self, problem: DispatchProblem,
                    stored0_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_row = self.rows.count
        rl, ru = np.full(n_row, -_INF), np.full(n_row, _INF)
        bn = self.masks["battery"]
        load_total = problem.load_kw.sum(axis=1)
        rl[self.r_bal] = load_total
        ru[self.r_bal] = load_total
        rl[self.r_dyn] = 0.0
        ru[self.r_dyn] = 0.0
        rl[self.r_dyn[:, 0]] = stored0_kwh[bn]
        ru[self.r_dyn[:, 0]] = stored0_kwh[bn]
        rl[self.r_res] = np.where(problem.grid.available, problem.reserve_kwh, -_INF)
        ru[self.r_fit] = 0.0
        ru[self.r_peak] = 0.0
        for fam, (r2, m_second) in self.r_excl.items():
            first_rows = self.rows.blocks["x1_" + fam].ids()
            ru[first_rows] = 0.0
            ru[r2] = m_second
        return rl, ru

    # ----------------------------------------------------------------- solving
    def set_start(self, col_values: np.ndarray) -> None:
        """Offer a full column vector as a MIP start (ignored by HiGHS if infeasible)."""
        self.highs.setSolution(len(self._all_cols), self._all_cols, col_values)

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
        cols = _nonbasic_side(col_value, last["lb"], last["ub"])
        rows = _nonbasic_side(row_value, last["rl"], last["ru"])
        basic = np.asarray(basic)
        cols[basic[basic >= 0]] = _BASIC
        rows[-1 - basic[basic < 0]] = _BASIC
        return cols, rows

    def set_shifted_basis(self, col_status: np.ndarray, row_status: np.ndarray,
                          steps: int) -> None:
        """Start the next solve from a basis moved ``steps`` steps earlier.

        Every step-indexed column and row takes the status of the same entity ``steps`` steps
        later; the new last steps repeat the old last one.  The count of basic entries is then
        restored (a basis needs exactly one per row) with the row slacks of the last step.
        """
        cols = _shift_blocks(col_status, self.cols.blocks, steps, ("peak", "borrow"))
        rows = _shift_blocks(row_status, self.rows.blocks, steps, ())
        last = np.concatenate([blk.ids()[..., -1].ravel() for blk in self.rows.blocks.values()
                               if blk.shape])
        missing = self.rows.count - int(np.sum(cols == _BASIC) + np.sum(rows == _BASIC))
        if missing > 0:
            candidates = last[rows[last] != _BASIC]
            rows[candidates[:missing]] = _BASIC
        elif missing < 0:
            candidates = last[rows[last] == _BASIC]
            # a slack made nonbasic sits at a finite side; HiGHS moves it if that is wrong
            rows[candidates[:-missing]] = _LOWER
        basis = highspy.HighsBasis()
        basis.col_status = list(map(_STATUS.__getitem__, cols.tolist()))
        basis.row_status = list(map(_STATUS.__getitem__, rows.tolist()))
        basis.valid = True
        self.highs.setBasis(basis)

    def shifted_values_fit(self, values: np.ndarray, steps: int) -> bool:
        """Whether ``values`` moved ``steps`` steps earlier satisfy the pushed data up to the
        new last steps: then only those steps need work and primal simplex suits the start.

        Call after :meth:`update`.  Bounds and rows are checked to 1e-6 (relative above 1).
        """
        x = _shift_blocks(values, self.cols.blocks, steps, ("peak", "borrow"))
        last = self._pushed
        old_cols = _before_last(self.cols.blocks, self.cols.count, steps, ("peak", "borrow"))
        old_rows = _before_last(self.rows.blocks, self.rows.count, steps, ())
        activity = self._matrix @ x
        return (_within(x[old_cols], last["lb"][old_cols], last["ub"][old_cols])
                and _within(activity[old_rows], last["rl"][old_rows], last["ru"][old_rows]))

    def run(self, time_limit_s: float, mip_rel_gap: float, threads: int,
            primal: bool = False) -> dict:
        """Solve; return model status name, column values or None, gap and HiGHS time [s].

        ``primal`` selects the primal simplex (for a start that is nearly primal feasible,
        such as a shifted basis); otherwise HiGHS's default dual simplex.
        """
        h = self.highs
        h.setOptionValue("simplex_strategy", 4 if primal else 1)
        # HiGHS checks time_limit against its run clock, which keeps counting across runs on
        # one Highs object: the per-solve budget starts from the clock's current reading.
        h.setOptionValue("time_limit", h.getRunTime() + float(time_limit_s))
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        h.setOptionValue("threads", int(threads))
        before_s = h.getRunTime()
        h.run()
        # getRunTime is cumulative over runs on one Highs object: take the difference.
        solver_s = h.getRunTime() - before_s
        status = h.getModelStatus()
        info = h.getInfo()
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        solution = h.getSolution()
        values = np.asarray(solution.col_value) if has_solution else None
        self._activity = (values, np.asarray(solution.row_value)) if has_solution else None
        gap = float(info.mip_gap) if self.is_mip else 0.0
        return {"status": h.modelStatusToString(status), "optimal":
                status == highspy.HighsModelStatus.kOptimal, "values": values,
                "gap": gap if np.isfinite(gap) else float("inf"), "solver_s": solver_s,
                "objective": float(info.objective_function_value)}

    def columns_from(self, problem: DispatchProblem, plan) -> np.ndarray:
        """The column vector of a ``DispatchPlan`` (e.g. the fallback), for a MIP start."""
        x = np.zeros(self.cols.count)
        bn, spill, dem = self.masks["battery"], self.masks["spill"], self.masks["demand"]
        bat = problem.battery
        flow = plan.link_flow_kw
        x[self.c_pv] = plan.pv_used_kw
        x[self.c_imp] = plan.grid_import_kw
        x[self.c_exp] = plan.grid_export_kw
        x[self.c_shed] = plan.load_shed_kw
        x[self.c_ch] = plan.battery_charge_kw[bn]
        x[self.c_dis] = plan.battery_discharge_kw[bn]
        borrow = np.maximum(bat.soc_min_kwh[bn] - plan.stored_kwh[bn].min(axis=1), 0.0)
        x[self.c_borrow] = borrow
        x[self.c_st] = plan.stored_kwh[bn] + borrow[:, None]
        x[self.c_spill] = plan.surplus_spilled_kw[spill]
        x[self.c_fwd] = np.maximum(flow, 0.0)
        x[self.c_bwd] = np.maximum(-flow, 0.0)
        x[self.c_rshort] = np.clip(problem.reserve_kwh - plan.stored_kwh.sum(axis=0), 0.0,
                                   problem.reserve_kwh)
        x[self.c_peak] = np.maximum(plan.grid_import_kw[dem].max(axis=1),
                                    problem.grid.peak_import_so_far_kw[dem])
        first = {"battery": self.c_ch, "grid": self.c_imp, "link": self.c_fwd}
        for fam, z in self.c_z.items():
            x[z] = (x[first[fam]] > 0).astype(float)
        return x
