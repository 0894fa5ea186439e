"""The dispatch formulation written in Pyomo: the exact MILP reference.

Same variables, constraints and objective as :mod:`optimizer.formulation` (see its module
docstring for the equations), but with exclusivity and grey/green mode binaries integer
everywhere by default, so it is exact whatever the prices.  The tests check the production
model (LP where that is exact, binaries only where needed, modes marked lazily) against it.
It is rebuilt on every call and solved through Pyomo's HiGHS interface
(``pyomo.contrib.solver``); translating it is far too slow for the control loop at 200+
homes, which is why the production path hands arrays to HiGHS directly.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

from optimizer.accounting import clamp_initial_stored, make_plan
from optimizer.fallback import fallback_plan
from optimizer.formulation import export_bounds_kw, import_bounds_kw
from optimizer.layout import Binaries, Masks, binaries_needed, node_link_send_kw
from optimizer.plan import DispatchPlan, PlanArrays, PlanStatus, Termination
from optimizer.problem import BILLING_GROUPS, DEMAND_PERIOD_H, DispatchProblem

__all__ = ["build_reference_model", "solve_reference"]


def build_reference_model(problem: DispatchProblem, all_binary: bool = True) -> pyo.ConcreteModel:
    """Pyomo model of ``problem``; ``all_binary=False`` uses :func:`binaries_needed`."""
    m = pyo.ConcreteModel(name="dispatch_reference")
    masks = Masks.of(problem)
    m.N, m.T = range(problem.n_nodes), range(problem.n_steps)
    m.B = [int(b) for b in masks.battery]
    _variables(m, problem, masks)
    _balance(m, problem)
    _battery(m, problem, masks)
    _grid(m, problem, masks)
    _modes(m, problem, masks)
    _exclusivity(m, problem, binaries_needed(problem, all_binary))
    m.obj = pyo.Objective(expr=_objective(m, problem, masks))
    return m


def _variables(m: pyo.ConcreteModel, problem: DispatchProblem, masks: Masks) -> None:
    N, T, B = m.N, m.T, m.B
    K, L = range(problem.n_tiers), range(problem.n_links)
    bat, grid, links = problem.battery, problem.grid, problem.links
    pv_av = np.where(problem.pv_available_kw > 1e-9, problem.pv_available_kw, 0.0)
    imp_ub, exp_ub = import_bounds_kw(problem), export_bounds_kw(problem)
    grey = set(int(masks.battery[i]) for i in masks.grey)
    m.pv = pyo.Var(N, T, bounds=lambda _, n, t: (0.0 if problem.pv_curtailable[n] else pv_av[n, t],
                                                  pv_av[n, t]))
    m.imp = pyo.Var(N, T, bounds=lambda _, n, t: (0.0, imp_ub[n, t]))
    m.exp = pyo.Var(N, T, bounds=lambda _, n, t: (0.0, exp_ub[n, t]))
    m.shed = pyo.Var(N, K, T, bounds=lambda _, n, k, t: (0.0, problem.load_kw[n, k, t]))
    m.spill = pyo.Var(N, T, bounds=lambda _, n, t: (0.0, 0.0 if problem.pv_curtailable[n]
                                                    else pv_av[n, t]))
    m.ch = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.charge_max_kw[b]))
    m.dis = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.discharge_max_kw[b]))
    m.chr = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.charge_max_kw[b] if b in grey else 0.0))
    m.disr = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.discharge_max_kw[b] if b in grey else 0.0))
    m.st = pyo.Var(B, T, bounds=lambda _, b, t: (bat.soc_min_kwh[b], bat.soc_max_kwh[b]))
    m.str = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.soc_max_kwh[b] if b in grey else 0.0))
    m.borrow = pyo.Var(B, bounds=lambda _, b: (0.0, bat.soc_min_kwh[b]))
    m.fwd = pyo.Var(L, T, bounds=lambda _, l, t: (0.0, links.capacity_kw[l]))
    m.bwd = pyo.Var(L, T, bounds=lambda _, l, t: (0.0, links.capacity_kw[l]))
    m.rshort = pyo.Var(T, bounds=lambda _, t: (0.0, problem.reserve_kwh[t]))
    m.peak = pyo.Var(N, bounds=lambda _, n: (grid.peak_import_so_far_kw[n], None))
    tiers = grid.tiers
    m.X = [(n, g, b) for n in N for g in range(BILLING_GROUPS) for b in range(tiers.n_blocks)]
    m.tierx = pyo.Var(m.X, bounds=lambda _, n, g, b: (0.0, None if np.isinf(tiers.width_kwh[n, g, b])
                                                      else tiers.width_kwh[n, g, b]))


def _received(m, problem: DispatchProblem, n: int, t: int):
    """Power arriving at node ``n`` minus power it sends (link terms of its balance)."""
    links = problem.links
    eta = links.efficiency
    return (sum(eta[l] * m.fwd[l, t] - m.bwd[l, t] for l in range(problem.n_links)
                if links.to_node[l] == n)
            + sum(eta[l] * m.bwd[l, t] - m.fwd[l, t] for l in range(problem.n_links)
                  if links.from_node[l] == n))


def _balance(m: pyo.ConcreteModel, problem: DispatchProblem) -> None:
    def balance(_, n, t):
        battery = (m.dis[n, t] - m.ch[n, t]) if n in m.B else 0.0
        return (m.pv[n, t] + m.imp[n, t] - m.exp[n, t] + battery + _received(m, problem, n, t)
                + sum(m.shed[n, k, t] for k in range(problem.n_tiers)) - m.spill[n, t]
                == float(problem.load_kw[n, :, t].sum()))

    m.balance = pyo.Constraint(m.N, m.T, rule=balance)


def _battery(m: pyo.ConcreteModel, problem: DispatchProblem, masks: Masks) -> None:
    bat, dt = problem.battery, problem.step_h
    stored0, grey0, _ = clamp_initial_stored(problem)

    keep = problem.keep_per_step

    def dynamics(_, b, t):  # on the real stored energy st - borrow
        before = m.st[b, t - 1] - m.borrow[b] if t > 0 else stored0[b]
        return m.st[b, t] - m.borrow[b] == keep[b] * (
            before + bat.charge_efficiency[b] * dt * m.ch[b, t]
            - dt / bat.discharge_efficiency[b] * m.dis[b, t])

    def grey_dynamics(_, b, t):
        before = m.str[b, t - 1] if t > 0 else float(grey0[b])
        return m.str[b, t] == keep[b] * (before + bat.charge_efficiency[b] * dt * m.chr[b, t]
                                         - dt / bat.discharge_efficiency[b] * m.disr[b, t])

    def reserve(_, t):
        if not problem.grid.available[t]:
            return pyo.Constraint.Skip
        return sum(m.st[b, t] - m.borrow[b] for b in m.B) + m.rshort[t] >= problem.reserve_kwh[t]

    m.dynamics = pyo.Constraint(m.B, m.T, rule=dynamics)
    m.grey_dynamics = pyo.Constraint(m.B, m.T, rule=grey_dynamics)
    m.green = pyo.Constraint(m.B, m.T, rule=lambda _, b, t: m.st[b, t] - m.str[b, t] - m.borrow[b] >= 0)
    m.chr_le = pyo.Constraint(m.B, m.T, rule=lambda _, b, t: m.chr[b, t] <= m.ch[b, t])
    m.disr_le = pyo.Constraint(m.B, m.T, rule=lambda _, b, t: m.disr[b, t] <= m.dis[b, t])
    m.reserve = pyo.Constraint(m.T, rule=reserve)


def _grid(m: pyo.ConcreteModel, problem: DispatchProblem, masks: Masks) -> None:
    grid, dt = problem.grid, problem.step_h
    m.fit = pyo.Constraint([int(n) for n in masks.fit], m.T,
                           rule=lambda _, n, t: m.exp[n, t] <= m.pv[n, t])
    hours = max(DEMAND_PERIOD_H, dt)

    def peak(_, n, p):
        steps = [t for t in m.T if grid.period_of_step[t] == p]
        so_far = float(grid.period_import_so_far_kwh[n]) if p == 0 else 0.0
        return sum(dt * m.imp[n, t] for t in steps) + so_far <= hours * m.peak[n]

    m.peak_def = pyo.Constraint([int(n) for n in masks.demand], range(grid.n_periods), rule=peak)

    def tier(_, n, g):
        steps = [t for t in m.T if grid.tiers.group_of_step[t] == g]
        return (sum(dt * m.imp[n, t] for t in steps)
                == sum(m.tierx[n, g, b] for b in range(grid.tiers.n_blocks)))

    m.tier = pyo.Constraint(m.N, range(BILLING_GROUPS), rule=tier)


def _modes(m: pyo.ConcreteModel, problem: DispatchProblem, masks: Masks) -> None:
    """Grey/green mode of each node that can import and send (always binary here)."""
    bat = problem.battery
    nodes = [int(n) for n in masks.mode]
    send_max = node_link_send_kw(problem)
    m.z_mode = pyo.Var(nodes, m.T, domain=pyo.Binary)

    def sent(n, t):
        return -_received(m, problem, n, t)

    m.m_imp = pyo.Constraint(nodes, m.T, rule=lambda _, n, t: m.imp[n, t]
                             <= float(problem.grid.import_limit_kw[n]) * m.z_mode[n, t])
    m.m_send = pyo.Constraint(nodes, m.T, rule=lambda _, n, t: sent(n, t)
                              <= float(send_max[n]) * (1 - m.z_mode[n, t]))
    with_battery = [n for n in nodes if n in m.B]
    m.m_disr = pyo.Constraint(with_battery, m.T, rule=lambda _, n, t: m.disr[n, t]
                              <= float(bat.discharge_max_kw[n]) * m.z_mode[n, t])
    m.m_chg = pyo.Constraint(with_battery, m.T, rule=lambda _, n, t: m.ch[n, t] - m.chr[n, t]
                             <= float(bat.charge_max_kw[n]) * (1 - m.z_mode[n, t]))


def _objective(m: pyo.ConcreteModel, problem: DispatchProblem, masks: Masks):
    """Same terms as ``optimizer.accounting.objective_parts`` [JPY]."""
    N, T, K, L, B = m.N, m.T, range(problem.n_tiers), range(problem.n_links), m.B
    dt, last = problem.step_h, problem.n_steps - 1
    bat, grid, pen = problem.battery, problem.grid, problem.penalties
    tie = pen.tie_break_jpy_per_kwh * dt
    voll = problem.value_of_lost_load_jpy_per_kwh

    def shed_price(k, t):
        return voll[k] if not grid.available[t] else pen.unserved_connected_jpy_per_kwh

    return (sum(
        (grid.import_price_jpy_per_kwh[n, t] * dt + tie) * m.imp[n, t]
        - grid.export_price_jpy_per_kwh[n, t] * dt * m.exp[n, t]
        + sum(shed_price(k, t) * dt * m.shed[n, k, t] for k in K)
        + pen.surplus_spill_jpy_per_kwh * dt * m.spill[n, t] for n in N for t in T)
        + sum(grid.tiers.increment_jpy_per_kwh[x] * m.tierx[x] for x in m.X)
        + sum(tie * m.ch[b, t] + bat.wear_cost_jpy_per_kwh[b] * dt * m.dis[b, t]
              for b in B for t in T)
        - sum(bat.terminal_value_jpy_per_kwh[b] * (m.st[b, last] - m.borrow[b]) for b in B)
        + sum(pen.soc_below_min_jpy_per_kwh * m.borrow[b] for b in B)
        + sum(tie * (m.fwd[l, t] + m.bwd[l, t]) for l in L for t in T)
        + sum(pen.reserve_shortfall_jpy_per_kwh_h * dt * m.rshort[t] for t in T
              if grid.available[t])
        + sum(grid.demand_charge_jpy_per_kw[n] * (m.peak[n] - grid.peak_import_so_far_kw[n])
              for n in masks.demand))


def _exclusivity(m: pyo.ConcreteModel, problem: DispatchProblem, binaries: Binaries) -> None:
    """``first <= M1 z`` and ``second <= M2 (1 - z)`` with z binary where the mask says so."""
    bat, grid, links = problem.battery, problem.grid, problem.links
    T = m.T
    families = {
        "battery": ([(b, t) for b in m.B for t in T if binaries.battery[b, t]],
                    m.ch, m.dis, bat.charge_max_kw, bat.discharge_max_kw),
        "grid": ([(n, t) for n in m.N for t in T if binaries.grid[n, t]],
                 m.imp, m.exp, grid.import_limit_kw, grid.export_limit_kw),
        "link": ([(l, t) for l in range(problem.n_links) for t in T if binaries.link[l, t]],
                 m.fwd, m.bwd, links.capacity_kw, links.capacity_kw),
    }
    for fam, (index, first, second, m1, m2) in families.items():
        z = pyo.Var(index, domain=pyo.Binary)
        m.add_component("z_" + fam, z)
        m.add_component("x1_" + fam, pyo.Constraint(
            index, rule=lambda _, i, t: first[i, t] <= float(m1[i]) * z[i, t]))
        m.add_component("x2_" + fam, pyo.Constraint(
            index, rule=lambda _, i, t: second[i, t] <= float(m2[i]) * (1 - z[i, t])))


def solve_reference(problem: DispatchProblem, all_binary: bool = True) -> DispatchPlan:
    """Build and solve the Pyomo reference; a ``DispatchPlan`` like ``Dispatcher.solve``."""
    m = build_reference_model(problem, all_binary)
    opts = problem.options
    solver = SolverFactory("highs")
    results = solver.solve(m, load_solutions=False, raise_exception_on_nonoptimal_result=False,
                           time_limit=opts.time_limit_s, rel_gap=opts.mip_rel_gap,
                           threads=opts.threads)
    if results.solution_status not in (SolutionStatus.optimal, SolutionStatus.feasible):
        return fallback_plan(problem, note=f"reference: no solution ({results.termination_condition})")
    results.solution_loader.load_vars()
    optimal = results.termination_condition == TerminationCondition.convergenceCriteriaSatisfied
    return make_plan(problem, _arrays(m, problem), PlanStatus.OPTIMAL if optimal
                     else PlanStatus.TIME_LIMIT_FEASIBLE, clamp_initial_stored(problem)[2],
                     termination=Termination.OPTIMAL if optimal else Termination.TIME_LIMIT,
                     used_binaries=True, notes=("pyomo reference",))


def _arrays(m: pyo.ConcreteModel, problem: DispatchProblem) -> PlanArrays:
    n_nodes, n_steps = problem.n_nodes, problem.n_steps

    def grid_of(var, shape) -> np.ndarray:
        out = np.zeros(shape)
        for idx, v in var.items():
            out[idx] = max(pyo.value(v), 0.0)
        return out

    shape = (n_nodes, n_steps)
    stored = np.zeros(shape)
    for (b, t), v in m.st.items():
        stored[b, t] = max(pyo.value(v) - pyo.value(m.borrow[b]), 0.0)
    return PlanArrays(
        pv_used_kw=grid_of(m.pv, shape), battery_charge_kw=grid_of(m.ch, shape),
        battery_discharge_kw=grid_of(m.dis, shape), battery_charge_grey_kw=grid_of(m.chr, shape),
        battery_discharge_grey_kw=grid_of(m.disr, shape), stored_kwh=stored,
        stored_grey_kwh=np.minimum(grid_of(m.str, shape), stored),
        grid_import_kw=grid_of(m.imp, shape), grid_export_kw=grid_of(m.exp, shape),
        load_shed_kw=grid_of(m.shed, (n_nodes, problem.n_tiers, n_steps)),
        surplus_spilled_kw=grid_of(m.spill, shape),
        link_fwd_kw=grid_of(m.fwd, (problem.n_links, n_steps)),
        link_bwd_kw=grid_of(m.bwd, (problem.n_links, n_steps)))
