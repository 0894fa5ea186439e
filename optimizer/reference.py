"""The dispatch formulation written in Pyomo: the exact MILP reference.

Same variables, constraints and objective as :mod:`optimizer.highs_model` (see its module
docstring for the equations), but with exclusivity binaries on every charge/discharge,
import/export and link-direction pair by default, so it is exact whatever the prices.  The
tests check the production model (LP where that is exact, binaries only where needed)
against it.  It is rebuilt on every call and solved through Pyomo's HiGHS interface
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
from optimizer.highs_model import binaries_needed
from optimizer.plan import DispatchPlan, PlanStatus
from optimizer.problem import DispatchProblem

__all__ = ["build_reference_model", "solve_reference"]


def build_reference_model(problem: DispatchProblem, all_binary: bool = True) -> pyo.ConcreteModel:
    """Pyomo model of ``problem``; ``all_binary=False`` uses :func:`binaries_needed`."""
    m = pyo.ConcreteModel(name="dispatch_reference")
    n_nodes, n_steps, n_links = problem.n_nodes, problem.n_steps, problem.n_links
    dt = problem.step_h
    bat, grid, links = problem.battery, problem.grid, problem.links
    stored0, _ = clamp_initial_stored(problem)
    N, T, K, L = (range(n_nodes), range(n_steps), range(problem.n_tiers), range(n_links))
    B = [n for n in N if bat.soc_max_kwh[n] > 0 or bat.charge_max_kw[n] > 0
         or bat.discharge_max_kw[n] > 0]
    pv_av = np.where(problem.pv_available_kw > 1e-9, problem.pv_available_kw, 0.0)
    on = grid.available.astype(float)

    m.pv = pyo.Var(N, T, bounds=lambda _, n, t: (0.0 if problem.pv_curtailable[n] else pv_av[n, t],
                                                  pv_av[n, t]))
    m.imp = pyo.Var(N, T, bounds=lambda _, n, t: (0.0, grid.import_limit_kw[n] * on[t]))
    m.exp = pyo.Var(N, T, bounds=lambda _, n, t: (0.0, grid.export_limit_kw[n] * on[t]))
    m.shed = pyo.Var(N, K, T, bounds=lambda _, n, k, t: (0.0, problem.load_kw[n, k, t]))
    m.spill = pyo.Var(N, T, bounds=lambda _, n, t: (0.0, 0.0 if problem.pv_curtailable[n]
                                                    else pv_av[n, t]))
    m.ch = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.charge_max_kw[b]))
    m.dis = pyo.Var(B, T, bounds=lambda _, b, t: (0.0, bat.discharge_max_kw[b]))
    m.st = pyo.Var(B, T, bounds=lambda _, b, t: (bat.soc_min_kwh[b], bat.soc_max_kwh[b]))
    m.borrow = pyo.Var(B, bounds=lambda _, b: (0.0, bat.soc_min_kwh[b]))
    m.fwd = pyo.Var(L, T, bounds=lambda _, l, t: (0.0, links.capacity_kw[l]))
    m.bwd = pyo.Var(L, T, bounds=lambda _, l, t: (0.0, links.capacity_kw[l]))
    m.rshort = pyo.Var(T, bounds=lambda _, t: (0.0, problem.reserve_kwh[t]))
    m.peak = pyo.Var(N, bounds=lambda _, n: (grid.peak_import_so_far_kw[n], None))

    def balance(_, n, t):
        inflow = sum(links.efficiency[l] * m.fwd[l, t] - m.bwd[l, t]
                     for l in L if links.to_node[l] == n)
        outflow = sum(m.fwd[l, t] - links.efficiency[l] * m.bwd[l, t]
                      for l in L if links.from_node[l] == n)
        battery = (m.dis[n, t] - m.ch[n, t]) if n in B else 0.0
        return (m.pv[n, t] + m.imp[n, t] - m.exp[n, t] + battery + inflow - outflow
                + sum(m.shed[n, k, t] for k in K) - m.spill[n, t]
                == float(problem.load_kw[n, :, t].sum()))

    def dynamics(_, b, t):
        before = m.st[b, t - 1] if t > 0 else stored0[b] + m.borrow[b]
        return m.st[b, t] == (before + bat.charge_efficiency[b] * dt * m.ch[b, t]
                              - dt / bat.discharge_efficiency[b] * m.dis[b, t])

    def reserve(_, t):
        if not grid.available[t]:
            return pyo.Constraint.Skip
        return sum(m.st[b, t] - m.borrow[b] for b in B) + m.rshort[t] >= problem.reserve_kwh[t]

    m.balance = pyo.Constraint(N, T, rule=balance)
    m.dynamics = pyo.Constraint(B, T, rule=dynamics)
    m.reserve = pyo.Constraint(T, rule=reserve)
    m.fit = pyo.Constraint([b for b in B if not bat.grid_export_allowed[b]], T,
                           rule=lambda _, n, t: m.exp[n, t] <= m.pv[n, t])
    m.peak_def = pyo.Constraint([n for n in N if grid.demand_charge_jpy_per_kw[n] > 0], T,
                                rule=lambda _, n, t: m.imp[n, t] <= m.peak[n])
    _exclusivity(m, problem, B, binaries_needed(problem, all_binary))

    m.obj = pyo.Objective(expr=_objective(m, problem, B))
    return m


def _objective(m: pyo.ConcreteModel, problem: DispatchProblem, B: list[int]):
    """Same terms as ``optimizer.accounting.objective_parts`` [JPY]."""
    N, T, K, L = (range(problem.n_nodes), range(problem.n_steps), range(problem.n_tiers),
                  range(problem.n_links))
    dt, n_steps = problem.step_h, problem.n_steps
    bat, grid, pen = problem.battery, problem.grid, problem.penalties
    tie = pen.tie_break_jpy_per_kwh * dt
    return (sum(
        (grid.import_price_jpy_per_kwh[n, t] * dt + tie) * m.imp[n, t]
        - grid.export_price_jpy_per_kwh[n, t] * dt * m.exp[n, t]
        + sum(problem.value_of_lost_load_jpy_per_kwh[k] * dt * m.shed[n, k, t] for k in K)
        + pen.surplus_spill_jpy_per_kwh * dt * m.spill[n, t] for n in N for t in T)
        + sum(tie * m.ch[b, t] + bat.wear_cost_jpy_per_kwh[b] * dt * m.dis[b, t]
              for b in B for t in T)
        - sum(bat.terminal_value_jpy_per_kwh[b] * (m.st[b, n_steps - 1] - m.borrow[b])
              for b in B)
        + sum(pen.soc_below_min_jpy_per_kwh * m.borrow[b] for b in B)
        + sum(tie * (m.fwd[l, t] + m.bwd[l, t]) for l in L for t in T)
        + sum(pen.reserve_shortfall_jpy_per_kwh * m.rshort[t] for t in T if grid.available[t])
        + sum(grid.demand_charge_jpy_per_kw[n] * (m.peak[n] - grid.peak_import_so_far_kw[n])
              for n in N))


def _exclusivity(m: pyo.ConcreteModel, problem: DispatchProblem, batteries: list[int],
                 binaries: dict[str, np.ndarray]) -> None:
    """``first <= M1 z`` and ``second <= M2 (1 - z)`` with z binary where the mask says so."""
    bat, grid, links = problem.battery, problem.grid, problem.links
    T = range(problem.n_steps)
    families = {
        "battery": ([(b, t) for b in batteries for t in T if binaries["battery"][b, t]],
                    m.ch, m.dis, bat.charge_max_kw, bat.discharge_max_kw),
        "grid": ([(n, t) for n in range(problem.n_nodes) for t in T if binaries["grid"][n, t]],
                 m.imp, m.exp, grid.import_limit_kw, grid.export_limit_kw),
        "link": ([(l, t) for l in range(problem.n_links) for t in T if binaries["link"][l, t]],
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
                     else PlanStatus.TIME_LIMIT_FEASIBLE, clamp_initial_stored(problem)[1],
                     used_binaries=True, notes=("pyomo reference",))


def _arrays(m: pyo.ConcreteModel, problem: DispatchProblem) -> dict[str, np.ndarray]:
    n_nodes, n_steps = problem.n_nodes, problem.n_steps

    def grid_of(var, shape) -> np.ndarray:
        out = np.zeros(shape)
        for idx, v in var.items():
            out[idx] = max(pyo.value(v), 0.0)
        return out

    stored = np.zeros((n_nodes, n_steps))
    for (b, t), v in m.st.items():
        stored[b, t] = max(pyo.value(v) - pyo.value(m.borrow[b]), 0.0)
    return {
        "pv_used_kw": grid_of(m.pv, (n_nodes, n_steps)),
        "battery_charge_kw": grid_of(m.ch, (n_nodes, n_steps)),
        "battery_discharge_kw": grid_of(m.dis, (n_nodes, n_steps)),
        "stored_kwh": stored,
        "grid_import_kw": grid_of(m.imp, (n_nodes, n_steps)),
        "grid_export_kw": grid_of(m.exp, (n_nodes, n_steps)),
        "load_shed_kw": grid_of(m.shed, (n_nodes, problem.n_tiers, n_steps)),
        "surplus_spilled_kw": grid_of(m.spill, (n_nodes, n_steps)),
        "link_fwd_kw": grid_of(m.fwd, (problem.n_links, n_steps)),
        "link_bwd_kw": grid_of(m.bwd, (problem.n_links, n_steps)),
    }
