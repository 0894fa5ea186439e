"""The dispatch model's columns, rows and numbers for one problem shape.

Constraint families (``dt`` = step length [h]; all split variables >= 0; ``z`` in [0, 1],
integer where :class:`~optimizer.layout.Binaries` says so):

* node balance ``pv + imp - exp + dis - ch + sum_l(in) - sum_l(out) + sum_k shed - spill
  = sum_k load`` per node and step; link ``fwd`` leaves ``from_node`` and arrives as
  ``eta * fwd`` at ``to_node``, ``bwd`` the other way round.
* battery ``s_t = keep (s_{t-1} + eta_c dt ch_t - dt dis_t / eta_d)`` for the real stored
  energy ``s = st - borrow``, ``s_{-1} = stored0``, ``keep = 1 - self_discharge dt`` (soft SoC
  floor: ``st`` in ``[soc_min, soc_max]``, ``0 <= borrow <= soc_min``, the deepest dip below
  the floor paid once).
* origin tags: grid-origin (grey) stored energy ``str_t = str_{t-1} + eta_c dt chr_t - dt
  disr_t / eta_d``, ``str_{-1} = grey0``; ``chr <= ch``, ``disr <= dis``, ``str <= st -
  borrow``; only batteries with a grid connection can hold grey energy.
* grey/green mode of a node that can import and send (``z = 1`` grey): ``imp <= M_imp z``,
  ``disr <= M_dis z``, ``ch - chr <= M_ch (1 - z)`` (charging while importing is grey),
  ``net_send <= M_send (1 - z)`` with ``net_send = sum(out) - sum(eta in)``.  So a node
  either draws grid energy (import, or grey discharge for its own load) and sends nothing
  net, or draws none and sends at most its own PV plus green battery energy less its load:
  grid power never leaves over a router link, now or later out of a battery.  In islanded
  steps the mode rows are relaxed (there is no utility power to resell).
* block reserve ``sum_b (st - borrow) + rshort >= reserve`` in grid-connected steps.
* grid ``imp <= import_limit``, ``exp <= export_limit`` (0 while islanded); FIT meter (battery
  export forbidden) ``exp <= pv`` and ``exp <= max(pv_available - load, 0)``; demand guard
  ``imp_t <= max(peak_so_far, max_{u <= t} max(load_u - pv_available_u, 0))`` at nodes with a
  demand charge.
* shedding ``0 <= shed_k <= load_k``; priced at the tier's value of lost load while
  islanded and at ``unserved_connected_jpy_per_kwh`` while connected (a reported violation).
* demand charge on 30-minute averages ``sum_{t in p} dt imp_t + E0 [p = 0] <= H peak``,
  ``peak >= peak_so_far``.
* tiered tariffs ``sum_{t in g} dt imp_t = sum_b x_{g,b}``, ``0 <= x_{g,b} <= width``.
* exclusivity where :func:`~optimizer.layout.binaries_needed` says it changes the answer:
  ``first <= M1 z``, ``second <= M2 (1 - z)``.

Objective [JPY], minimised: ``sum (p_imp + tie) imp dt - p_exp exp dt + sum incr x + wear dis
dt + tie ch dt + voll_k shed_k dt (islanded) + pen_unserved shed dt (connected) + pen_spill
spill dt + tie (fwd + bwd) dt + pen_res rshort dt + (pen_soc + value) borrow - value st_end +
charge (peak - peak_so_far)``; the parts are reported by
:func:`optimizer.accounting.objective_parts`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from optimizer.layout import Allocator, Binaries, Masks, node_link_send_kw
from optimizer.problem import BILLING_GROUPS, DEMAND_PERIOD_H, DispatchProblem

__all__ = ["Layout", "NOT_STEP_COLS", "NOT_STEP_ROWS", "export_bounds_kw", "import_bounds_kw"]

#: Column and row blocks whose last axis is not the step axis (never shifted with a roll).
NOT_STEP_COLS = ("borrow", "peak", "tierx")
NOT_STEP_ROWS = ("peak", "tier")
_INF = np.inf


class Layout:
    """Column and row blocks of the model and its constraint matrix.

    Parameters
    ----------
    problem : DispatchProblem
        Any problem of the shape.
    binaries : Binaries
        A family of exclusivity binaries exists where any entry is True.
    """

    def __init__(self, problem: DispatchProblem, binaries: Binaries) -> None:
        self.masks = Masks.of(problem)
        self.families = tuple(name for name in ("battery", "grid", "link")
                              if getattr(binaries, name).any())
        self.cols, self.rows = Allocator(), Allocator()
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._columns(problem)
        self._balance_rows(problem)
        self._battery_rows(problem)
        self._grid_rows(problem)
        self._mode_rows(problem)
        self._exclusivity_rows(problem)
        self.matrix = self._matrix()

    # ----------------------------------------------------------------- columns
    def _columns(self, problem: DispatchProblem) -> None:
        n, t, k, n_links = problem.n_nodes, problem.n_steps, problem.n_tiers, problem.n_links
        m, c = self.masks, self.cols
        b = len(m.battery)
        self.c_pv, self.c_imp, self.c_exp = c.add("pv", (n, t)), c.add("imp", (n, t)), c.add("exp", (n, t))
        self.c_shed = c.add("shed", (n, k, t))
        self.c_ch, self.c_dis = c.add("ch", (b, t)), c.add("dis", (b, t))
        self.c_chr, self.c_disr = c.add("chr", (b, t)), c.add("disr", (b, t))
        self.c_st, self.c_str = c.add("st", (b, t)), c.add("str", (b, t))
        self.c_borrow = c.add("borrow", (b,))
        self.c_spill = c.add("spill", (len(m.spill), t))
        self.c_fwd, self.c_bwd = c.add("fwd", (n_links, t)), c.add("bwd", (n_links, t))
        self.c_rshort = c.add("rshort", (t,))
        self.c_peak = c.add("peak", (len(m.demand),))
        self.c_tierx = c.add("tierx", (len(m.tiered), BILLING_GROUPS, problem.grid.tiers.n_blocks))
        self.c_z = {fam: c.add("z_" + fam, shape) for fam, shape in
                    (("battery", (b, t)), ("grid", (n, t)), ("link", (n_links, t)))
                    if fam in self.families}
        self.c_mode = c.add("z_mode", (len(m.mode), t))

    def _coef(self, rows, cols, vals) -> None:
        rows, cols = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        vals = np.broadcast_to(np.asarray(vals, dtype=float), rows.shape)
        self._entries.append((rows.ravel(), cols.ravel(), vals.ravel()))

    # ----------------------------------------------------------------- rows
    def _link_terms(self, rows: np.ndarray, problem: DispatchProblem, sign: float) -> None:
        """Add ``sign * (received - sent)`` of each node's links to node-indexed ``rows``."""
        links = problem.links
        eta = links.efficiency[:, None]
        self._coef(rows[links.from_node], self.c_fwd, -sign)
        self._coef(rows[links.to_node], self.c_fwd, sign * eta)
        self._coef(rows[links.to_node], self.c_bwd, -sign)
        self._coef(rows[links.from_node], self.c_bwd, sign * eta)

    def _balance_rows(self, problem: DispatchProblem) -> None:
        n, t = problem.n_nodes, problem.n_steps
        r = self.r_bal = self.rows.add("bal", (n, t))
        self._coef(r, self.c_pv, 1.0)
        self._coef(r, self.c_imp, 1.0)
        self._coef(r, self.c_exp, -1.0)
        self._coef(r[:, None, :], self.c_shed, 1.0)
        bn = self.masks.battery
        self._coef(r[bn], self.c_dis, 1.0)
        self._coef(r[bn], self.c_ch, -1.0)
        self._coef(r[self.masks.spill], self.c_spill, -1.0)
        self._link_terms(r, problem, 1.0)

    def _battery_rows(self, problem: DispatchProblem) -> None:
        bn = self.masks.battery
        b, t, dt = len(bn), problem.n_steps, problem.step_h
        bat = problem.battery
        eta_c, eta_d = bat.charge_efficiency[bn][:, None], bat.discharge_efficiency[bn][:, None]
        keep = problem.keep_per_step[bn][:, None]  # self-discharge after each step's flows
        for name, st, ch, dis in (("dyn", self.c_st, self.c_ch, self.c_dis),
                                  ("dynr", self.c_str, self.c_chr, self.c_disr)):
            r = self.rows.add(name, (b, t))
            self._coef(r, st, 1.0)
            self._coef(r[:, 1:], st[:, :-1], -keep)
            self._coef(r, ch, -dt * eta_c * keep)
            self._coef(r, dis, dt / eta_d * keep)
            setattr(self, "r_" + name, r)
        # real stored energy st - borrow decays, so: st_t - borrow = keep (st_{t-1} - borrow + ...)
        self._coef(self.r_dyn[:, 0], self.c_borrow, -1.0)
        self._coef(self.r_dyn[:, 1:], self.c_borrow[:, None], -(1.0 - keep))
        self.r_green = self.rows.add("green", (b, t))      # st - str - borrow >= 0
        self._coef(self.r_green, self.c_st, 1.0)
        self._coef(self.r_green, self.c_str, -1.0)
        self._coef(self.r_green, self.c_borrow[:, None], -1.0)
        self.r_chr = self.rows.add("chr_le", (b, t))       # chr - ch <= 0
        self._coef(self.r_chr, self.c_chr, 1.0)
        self._coef(self.r_chr, self.c_ch, -1.0)
        self.r_disr = self.rows.add("disr_le", (b, t))     # disr - dis <= 0
        self._coef(self.r_disr, self.c_disr, 1.0)
        self._coef(self.r_disr, self.c_dis, -1.0)
        self.r_res = self.rows.add("res", (t,))
        self._coef(self.r_res[None, :], self.c_st, 1.0)
        self._coef(self.r_res[None, :], self.c_borrow[:, None], -1.0)
        self._coef(self.r_res, self.c_rshort, 1.0)

    def _grid_rows(self, problem: DispatchProblem) -> None:
        t, dt, grid = problem.n_steps, problem.step_h, problem.grid
        m = self.masks
        self.r_fit = self.rows.add("fit", (len(m.fit), t))
        self._coef(self.r_fit, self.c_exp[m.fit], 1.0)
        self._coef(self.r_fit, self.c_pv[m.fit], -1.0)
        periods = grid.period_of_step
        self.r_peak = self.rows.add("peak", (len(m.demand), grid.n_periods))
        self._coef(self.r_peak[:, periods], self.c_imp[m.demand], dt)
        self._coef(self.r_peak, self.c_peak[:, None], -max(DEMAND_PERIOD_H, dt))
        groups = grid.tiers.group_of_step
        self.r_tier = self.rows.add("tier", (len(m.tiered), BILLING_GROUPS))
        self._coef(self.r_tier[:, groups], self.c_imp[m.tiered], dt)
        self._coef(self.r_tier[:, :, None], self.c_tierx, -1.0)

    def big_m(self, problem: DispatchProblem) -> dict[str, np.ndarray]:
        """Big-M values of the mode rows per mode node (each the variable's own bound)."""
        m, bat = self.masks, problem.battery
        bm = m.battery[m.mode_battery]
        return {"imp": problem.grid.import_limit_kw[m.mode],
                "send": node_link_send_kw(problem)[m.mode],
                "dis": bat.discharge_max_kw[bm], "ch": bat.charge_max_kw[bm]}

    def _mode_rows(self, problem: DispatchProblem) -> None:
        m, t = self.masks, problem.n_steps
        big = self.big_m(problem)
        z, zb = self.c_mode, self.c_mode[m.mode_of_battery]
        self.r_mimp = self.rows.add("m_imp", (len(m.mode), t))         # imp - Mi z <= 0
        self._coef(self.r_mimp, self.c_imp[m.mode], 1.0)
        self._coef(self.r_mimp, z, -big["imp"][:, None])
        self.r_msend = self.rows.add("m_send", (len(m.mode), t))       # out - in + Ms z <= Ms
        full = np.full((problem.n_nodes, t), -1)
        full[m.mode] = self.r_msend
        self._mode_send_terms(problem, full)
        self._coef(self.r_msend, z, big["send"][:, None])
        self.r_mdisr = self.rows.add("m_disr", (len(m.mode_battery), t))  # disr - Md z <= 0
        self._coef(self.r_mdisr, self.c_disr[m.mode_battery], 1.0)
        self._coef(self.r_mdisr, zb, -big["dis"][:, None])
        self.r_mchg = self.rows.add("m_chg", (len(m.mode_battery), t))    # ch - chr + Mc z <= Mc
        self._coef(self.r_mchg, self.c_ch[m.mode_battery], 1.0)
        self._coef(self.r_mchg, self.c_chr[m.mode_battery], -1.0)
        self._coef(self.r_mchg, zb, big["ch"][:, None])

    def _mode_send_terms(self, problem: DispatchProblem, rows: np.ndarray) -> None:
        """``sent - received`` of each mode node's links (rows of other nodes are -1)."""
        links = problem.links
        eta = links.efficiency[:, None]
        for node_of, col, coef in ((links.from_node, self.c_fwd, 1.0),
                                   (links.to_node, self.c_fwd, -eta),
                                   (links.to_node, self.c_bwd, 1.0),
                                   (links.from_node, self.c_bwd, -eta)):
            r = rows[node_of]
            keep = r[:, 0] >= 0
            self._coef(r[keep], col[keep], coef[keep] if np.ndim(coef) else coef)

    def _exclusivity_rows(self, problem: DispatchProblem) -> None:
        bat, grid, links = problem.battery, problem.grid, problem.links
        bn = self.masks.battery
        pairs = {
            "battery": (self.c_ch, self.c_dis, bat.charge_max_kw[bn], bat.discharge_max_kw[bn]),
            "grid": (self.c_imp, self.c_exp, grid.import_limit_kw, grid.export_limit_kw),
            "link": (self.c_fwd, self.c_bwd, links.capacity_kw, links.capacity_kw),
        }
        self.r_excl: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for fam, z in self.c_z.items():
            first, second, m_first, m_second = pairs[fam]
            r1 = self.rows.add("x1_" + fam, first.shape)
            r2 = self.rows.add("x2_" + fam, second.shape)
            self._coef(r1, first, 1.0)            # first <= M1 z
            self._coef(r1, z, -m_first[:, None])
            self._coef(r2, second, 1.0)           # second <= M2 (1 - z)
            self._coef(r2, z, m_second[:, None])
            self.r_excl[fam] = (r1, r2, np.broadcast_to(m_second[:, None], z.shape))

    def _matrix(self) -> sp.csc_matrix:
        rows = np.concatenate([e[0] for e in self._entries])
        cols = np.concatenate([e[1] for e in self._entries])
        vals = np.concatenate([e[2] for e in self._entries])
        self._entries = []
        mat = sp.csc_matrix((vals, (rows, cols)), shape=(self.rows.count, self.cols.count))
        mat.sum_duplicates()
        return mat

    # ----------------------------------------------------------------- numbers
    def bounds(self, problem: DispatchProblem) -> tuple[np.ndarray, np.ndarray]:
        """Column bounds of this cycle's data."""
        n_col = self.cols.count
        lb, ub = np.zeros(n_col), np.full(n_col, _INF)
        grid, bat, links, m = problem.grid, problem.battery, problem.links, self.masks
        # Values below 1e-9 kW are numerical dust from forecasts; they only slow HiGHS down.
        pv = np.where(problem.pv_available_kw > 1e-9, problem.pv_available_kw, 0.0)
        ub[self.c_pv] = pv
        lb[self.c_pv] = np.where(problem.pv_curtailable[:, None], 0.0, pv)
        ub[self.c_imp] = import_bounds_kw(problem)
        ub[self.c_exp] = export_bounds_kw(problem)
        ub[self.c_shed] = problem.load_kw
        bn, grey = m.battery, np.isin(m.battery, m.battery[m.grey])
        ub[self.c_ch] = bat.charge_max_kw[bn][:, None]
        ub[self.c_dis] = bat.discharge_max_kw[bn][:, None]
        ub[self.c_chr] = np.where(grey, bat.charge_max_kw[bn], 0.0)[:, None]
        ub[self.c_disr] = np.where(grey, bat.discharge_max_kw[bn], 0.0)[:, None]
        lb[self.c_st] = bat.soc_min_kwh[bn][:, None]
        ub[self.c_st] = bat.soc_max_kwh[bn][:, None]
        ub[self.c_str] = np.where(grey, bat.soc_max_kwh[bn], 0.0)[:, None]
        ub[self.c_borrow] = bat.soc_min_kwh[bn]
        ub[self.c_spill] = pv[m.spill]
        ub[self.c_fwd] = links.capacity_kw[:, None]
        ub[self.c_bwd] = links.capacity_kw[:, None]
        ub[self.c_rshort] = problem.reserve_kwh
        lb[self.c_peak] = grid.peak_import_so_far_kw[m.demand]
        ub[self.c_tierx] = grid.tiers.width_kwh[m.tiered]
        for z in list(self.c_z.values()) + [self.c_mode]:
            ub[z] = 1.0
        return lb, ub

    def costs(self, problem: DispatchProblem) -> tuple[np.ndarray, float]:
        """Column costs [JPY per unit] and the objective offset [JPY]."""
        cost = np.zeros(self.cols.count)
        dt, m = problem.step_h, self.masks
        grid, bat, pen = problem.grid, problem.battery, problem.penalties
        bn = m.battery
        tie = pen.tie_break_jpy_per_kwh * dt
        cost[self.c_imp] = grid.import_price_jpy_per_kwh * dt + tie
        cost[self.c_exp] = -grid.export_price_jpy_per_kwh * dt
        shed_cost = np.where(grid.available[None, :], pen.unserved_connected_jpy_per_kwh,
                             problem.value_of_lost_load_jpy_per_kwh[:, None])
        cost[self.c_shed] = shed_cost[None, :, :] * dt
        cost[self.c_ch] = tie
        cost[self.c_dis] = bat.wear_cost_jpy_per_kwh[bn][:, None] * dt
        cost[self.c_st[:, -1]] = -bat.terminal_value_jpy_per_kwh[bn]
        # real stored energy is st - borrow, so the terminal credit applies to borrow too
        cost[self.c_borrow] = pen.soc_below_min_jpy_per_kwh + bat.terminal_value_jpy_per_kwh[bn]
        cost[self.c_spill] = pen.surplus_spill_jpy_per_kwh * dt
        cost[self.c_fwd] = tie
        cost[self.c_bwd] = tie
        cost[self.c_rshort] = np.where(grid.available, pen.reserve_shortfall_jpy_per_kwh_h * dt, 0.0)
        charge = grid.demand_charge_jpy_per_kw[m.demand]
        cost[self.c_peak] = charge
        cost[self.c_tierx] = grid.tiers.increment_jpy_per_kwh[m.tiered]
        return cost, -float(np.sum(charge * grid.peak_import_so_far_kw[m.demand]))

    def row_bounds(self, problem: DispatchProblem, stored0_kwh: np.ndarray,
                   grey0_kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row sides of this cycle's data (initial stored and grey energy clamped by the caller)."""
        n_row = self.rows.count
        rl, ru = np.full(n_row, -_INF), np.full(n_row, _INF)
        bn, grid = self.masks.battery, problem.grid
        load_total = problem.load_kw.sum(axis=1)
        rl[self.r_bal] = ru[self.r_bal] = load_total
        keep = problem.keep_per_step[bn]
        for rows, first in ((self.r_dyn, keep * stored0_kwh[bn]), (self.r_dynr, keep * grey0_kwh[bn])):
            rl[rows] = ru[rows] = 0.0
            rl[rows[:, 0]] = ru[rows[:, 0]] = first
        rl[self.r_green] = 0.0
        ru[self.r_chr] = ru[self.r_disr] = 0.0
        rl[self.r_res] = np.where(grid.available, problem.reserve_kwh, -_INF)
        ru[self.r_fit] = 0.0
        ru[self.r_peak] = 0.0
        ru[self.r_peak[:, 0]] = -grid.period_import_so_far_kwh[self.masks.demand]
        rl[self.r_tier] = ru[self.r_tier] = 0.0
        big = self.big_m(problem)
        # While islanded the origin rule is off (no utility power to resell): stored energy
        # of any origin may be shared and charging is green, so the mode rows cannot bind.
        off = (~grid.available).astype(float)[None, :]
        ru[self.r_mimp] = big["imp"][:, None] * off
        ru[self.r_mdisr] = big["dis"][:, None] * off
        ru[self.r_msend] = big["send"][:, None] * (1.0 + off)
        ru[self.r_mchg] = big["ch"][:, None] * (1.0 + off)
        for r1, r2, m_second in self.r_excl.values():
            ru[r1] = 0.0
            ru[r2] = m_second
        return rl, ru


def import_bounds_kw(problem: DispatchProblem) -> np.ndarray:
    """Upper bound of import per node and step [kW]: the connection limit while connected,
    capped at demand-charge nodes by the demand guard: the peak so far, or the highest own
    deficit ``sum_k load - pv_available`` of the horizon up to that step, whichever is larger
    (what the member's own load sets; grid charging may fill up to it, never above)."""
    grid = problem.grid
    ub = grid.import_limit_kw[:, None] * grid.available[None, :]
    deficit = np.maximum(problem.load_kw.sum(axis=1) - problem.pv_available_kw, 0.0)
    guard = np.maximum(grid.peak_import_so_far_kw[:, None], np.maximum.accumulate(deficit, axis=1))
    guard = np.where(grid.guard_lifted[None, :], np.inf, guard)
    return np.where(grid.demand_charge_jpy_per_kw[:, None] > 0, np.minimum(ub, guard), ub)


def export_bounds_kw(problem: DispatchProblem) -> np.ndarray:
    """Upper bound of export per node and step [kW]: the connection limit while connected,
    capped at the own PV surplus ``max(pv_available - load, 0)`` where battery export is
    forbidden (energy from the battery or received over links never reaches the grid there)."""
    grid = problem.grid
    ub = grid.export_limit_kw[:, None] * grid.available[None, :]
    surplus = np.maximum(problem.pv_available_kw - problem.load_kw.sum(axis=1), 0.0)
    return np.where(problem.battery.grid_export_allowed[:, None], ub, np.minimum(ub, surplus))

