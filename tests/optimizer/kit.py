"""Helpers of the optimizer tests: a compact problem builder and the physical plan checks."""

from __future__ import annotations

import numpy as np

from optimizer import (
    BatteryData,
    rule_breaches,
    DispatchPlan,
    DispatchProblem,
    GridData,
    LinkData,
    Penalties,
    SolverOptions,
)

#: Tolerance of the physical checks [kW or kWh]: HiGHS's feasibility tolerance is 1e-7.
TOL = 1e-5


def full(value, shape) -> np.ndarray:
    """``value`` broadcast to ``shape`` as a float array."""
    return np.broadcast_to(np.asarray(value, dtype=float), shape).copy()


def make_problem(n_nodes=1, n_steps=2, n_tiers=1, step_s=3600.0, pv=0.0, load=1.0,
                 voll=None, import_price=30.0, export_price=10.0, import_limit=100.0,
                 export_limit=100.0, available=True, demand_charge=0.0, peak_so_far=0.0,
                 stored=0.0, soc_min=0.0, soc_max=0.0, charge_max=0.0, discharge_max=0.0,
                 eta_c=1.0, eta_d=1.0, wear=0.0, terminal=0.0, battery_export=True,
                 links=(), link_capacity=(), link_efficiency=(), reserve=0.0,
                 curtailable=True, penalties=None, options=None, grey=0.0,
                 period_of_step=None, period_so_far=0.0, tiers=None,
                 self_discharge=0.0) -> DispatchProblem:
    """A problem where every argument may be a scalar or an array of the right shape.

    ``load`` has shape (N, K, T); ``links`` is a sequence of (from_node, to_node) pairs.
    Tie-break costs are off by default so that objectives match hand values exactly.
    """
    n, t, k = n_nodes, n_steps, n_tiers
    voll = np.arange(k, 0, -1) * 1000.0 if voll is None else voll
    pairs = np.array(links, dtype=int).reshape(-1, 2)
    return DispatchProblem(
        node_ids=tuple(f"n{i}" for i in range(n)), step_s=step_s,
        pv_available_kw=full(pv, (n, t)), pv_curtailable=np.broadcast_to(curtailable, (n,)),
        load_kw=full(load, (n, k, t)), value_of_lost_load_jpy_per_kwh=full(voll, (k,)),
        grid=GridData(full(import_price, (n, t)), full(export_price, (n, t)),
                      full(import_limit, (n,)), full(export_limit, (n,)),
                      np.broadcast_to(available, (t,)), full(demand_charge, (n,)),
                      full(peak_so_far, (n,)), period_of_step, full(period_so_far, (n,)), tiers),
        battery=BatteryData(full(stored, (n,)), full(soc_min, (n,)), full(soc_max, (n,)),
                            full(charge_max, (n,)), full(discharge_max, (n,)),
                            full(eta_c, (n,)), full(eta_d, (n,)), full(wear, (n,)),
                            full(terminal, (n,)), np.broadcast_to(battery_export, (n,)),
                            full(grey, (n,)), full(self_discharge, (n,))),
        links=LinkData(pairs[:, 0], pairs[:, 1], full(link_capacity, (len(pairs),)),
                       full(link_efficiency, (len(pairs),))),
        reserve_kwh=full(reserve, (t,)),
        penalties=penalties or Penalties(tie_break_jpy_per_kwh=0.0),
        options=options or SolverOptions(time_limit_s=30.0, mip_rel_gap=0.0),
    )


def node_balance_kw(problem: DispatchProblem, plan: DispatchPlan) -> np.ndarray:
    """Supply minus demand at each node and step [kW]; zero for a valid plan."""
    links = problem.links
    received = np.zeros((problem.n_nodes, problem.n_steps))
    flow, loss = plan.link_flow_kw, plan.link_loss_kw
    for l_idx in range(problem.n_links):
        a, b = links.from_node[l_idx], links.to_node[l_idx]
        # net flow f (sending end) with loss: the sender gives f_out, the receiver gets f_in
        fwd = np.maximum(flow[l_idx], 0.0)
        bwd = np.maximum(-flow[l_idx], 0.0)
        eta = links.efficiency[l_idx]
        received[a] += eta * bwd - fwd
        received[b] += eta * fwd - bwd
    supply = plan.pv_used_kw + plan.grid_kw + plan.battery_kw + received
    demand = plan.load_served_kw.sum(axis=1) + plan.surplus_spilled_kw
    return supply - demand


def assert_valid(problem: DispatchProblem, plan: DispatchPlan, exclusive: bool = True) -> None:
    """Every physical rule the plan must keep; ``exclusive`` also forbids opposite flows."""
    bat, grid = problem.battery, problem.grid
    assert np.all(np.abs(node_balance_kw(problem, plan)) < TOL)
    assert np.all(plan.pv_used_kw >= -TOL)
    assert np.all(plan.pv_used_kw <= problem.pv_available_kw + TOL)
    assert np.all(plan.load_shed_kw >= -TOL)
    assert np.all(plan.load_shed_kw <= problem.load_kw + TOL)
    assert np.all(plan.battery_charge_kw <= bat.charge_max_kw[:, None] + TOL)
    assert np.all(plan.battery_discharge_kw <= bat.discharge_max_kw[:, None] + TOL)
    assert np.all(plan.stored_kwh >= -TOL)
    assert np.all(plan.stored_kwh <= bat.soc_max_kwh[:, None] + TOL)
    assert np.all(plan.grid_import_kw <= grid.import_limit_kw[:, None] + TOL)
    assert np.all(plan.grid_export_kw <= grid.export_limit_kw[:, None] + TOL)
    islanded = ~grid.available
    assert np.all(plan.grid_import_kw[:, islanded] <= TOL)
    assert np.all(plan.grid_export_kw[:, islanded] <= TOL)
    assert np.all(np.abs(plan.link_flow_kw) <= problem.links.capacity_kw[:, None] + TOL)
    assert np.all(plan.link_loss_kw >= -TOL)
    no_fit = ~bat.grid_export_allowed
    assert np.all(plan.grid_export_kw[no_fit] <= plan.pv_used_kw[no_fit] + TOL)
    _assert_dynamics(problem, plan)
    assert_rules(problem, plan)
    if exclusive:
        assert np.all(np.minimum(plan.battery_charge_kw, plan.battery_discharge_kw) <= TOL)
        assert np.all(np.minimum(plan.grid_import_kw, plan.grid_export_kw) <= TOL)
        one_way_loss = (1 - problem.links.efficiency[:, None]) * np.abs(plan.link_flow_kw)
        assert np.all(np.abs(plan.link_loss_kw - one_way_loss) <= TOL)
    assert abs(plan.objective_jpy - sum(plan.objective_parts.values())) < 1e-6 * (
        1 + abs(plan.objective_jpy))


def assert_rules(problem: DispatchProblem, plan: DispatchPlan) -> None:
    """The rules of the block: no resale, no battery export at FIT meters, no export while
    shedding; load unserved while connected only where reported as a violation."""
    breaches = rule_breaches(problem, plan, tol_kw=TOL)
    assert breaches.resold_kwh == 0.0, breaches
    assert breaches.forbidden_export_kwh == 0.0, breaches
    assert breaches.export_while_shedding_kwh == 0.0, breaches
    reported = sum(v.amount for v in plan.violations if v.kind == "load_unserved_while_connected")
    assert abs(breaches.shed_while_connected_kwh - reported * problem.step_h) < 1e-3 * (1 + reported)
    grey_ok = plan.stored_grey_kwh <= plan.stored_kwh + TOL
    assert np.all(grey_ok) and np.all(plan.stored_grey_kwh >= -TOL)
    no_grid = problem.grid.import_limit_kw <= 0
    assert np.all(plan.stored_grey_kwh[no_grid] <= TOL)


def _assert_dynamics(problem: DispatchProblem, plan: DispatchPlan) -> None:
    bat = problem.battery
    dt = problem.step_h
    start = np.clip(bat.stored_kwh, 0.0, bat.soc_max_kwh)
    keep = problem.keep_per_step[:, None]
    before = np.concatenate([start[:, None], plan.stored_kwh[:, :-1]], axis=1)
    expected = keep * (before + dt * (bat.charge_efficiency[:, None] * plan.battery_charge_kw
                                      - plan.battery_discharge_kw / bat.discharge_efficiency[:, None]))
    assert np.all(np.abs(expected - plan.stored_kwh) < TOL)
    grey0 = np.where(problem.grid.import_limit_kw > 0, np.clip(bat.grey_stored_kwh, 0.0, start), 0.0)
    before = np.concatenate([grey0[:, None], plan.stored_grey_kwh[:, :-1]], axis=1)
    expected = keep * (before + dt * (bat.charge_efficiency[:, None] * plan.battery_charge_grey_kw
                                      - plan.battery_discharge_grey_kw / bat.discharge_efficiency[:, None]))
    assert np.all(np.abs(expected - plan.stored_grey_kwh) < 10 * TOL)
