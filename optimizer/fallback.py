"""Rule-based dispatch for when no solver plan exists.  Pure, deterministic, never fails.

Per step, in this order:

1. self-consumption: each node's PV serves its own load;
2. each battery covers its own node's deficit, down to a floor (``soc_min_kwh``, and in
   grid-connected steps its share of the block reserve, by ``soc_max_kwh``), grid-origin
   stored energy first;
3. surplus PV, then spare green (PV- or P2P-origin) battery energy above the floor, is
   shared over links with direct neighbours in deficit (link capacity and efficiency
   respected, links in index order); a node that sends has no deficit left, so it imports
   nothing in that step: grid power never leaves over a link;
4. remaining PV surplus charges the node's own battery;
5. grid-connected: export the rest of the PV surplus (never battery energy), import the rest
   of the deficit (never more: no grid charging, no demand peak above the own deficit)
   within the connection limits, and leave what still lacks unserved (a violation, never a
   shedding order); islanded: curtail (or spill non-curtailable PV) and shed load by tier,
   highest tier index first, critical last.
"""

from __future__ import annotations

import numpy as np

from optimizer.accounting import clamp_initial_stored, make_plan
from optimizer.plan import DispatchPlan, PlanArrays, PlanStatus
from optimizer.problem import DispatchProblem

__all__ = ["fallback_plan"]


def fallback_plan(problem: DispatchProblem, note: str = "fallback requested") -> DispatchPlan:
    """A safe rule-based plan with status ``PlanStatus.FALLBACK``.

    Parameters
    ----------
    problem : DispatchProblem
    note : str
        Why the fallback is used; stored in ``plan.notes``.

    Returns
    -------
    DispatchPlan
        Satisfies node balance, device and link limits, zero grid flow in islanded steps and
        every rule of the block (no shedding while connected, no resale, no battery export).
    """
    n, t_count, k_count = problem.n_nodes, problem.n_steps, problem.n_tiers
    stored, grey, notes = clamp_initial_stored(problem)
    state = [stored.copy(), grey.copy()]
    names = ("pv_used_kw", "battery_charge_kw", "battery_discharge_kw", "battery_charge_grey_kw",
             "battery_discharge_grey_kw", "stored_kwh", "stored_grey_kwh", "grid_import_kw",
             "grid_export_kw", "surplus_spilled_kw")
    a = {name: np.zeros((n, t_count)) for name in names}
    a["load_shed_kw"] = np.zeros((n, k_count, t_count))
    a["link_fwd_kw"] = np.zeros((problem.n_links, t_count))
    a["link_bwd_kw"] = np.zeros((problem.n_links, t_count))
    for t in range(t_count):
        state = _step(problem, t, state, a)
    return make_plan(problem, PlanArrays(**a), PlanStatus.FALLBACK, notes, mip_gap=float("nan"),
                     notes=(note,))


def _floor_kwh(problem: DispatchProblem, t: int) -> np.ndarray:
    bat = problem.battery
    floor = bat.soc_min_kwh.copy()
    total_kwh = float(bat.soc_max_kwh.sum())
    if problem.grid.available[t] and total_kwh > 0:
        share = problem.reserve_kwh[t] * bat.soc_max_kwh / total_kwh
        floor = np.minimum(np.maximum(floor, share), bat.soc_max_kwh)
    return floor


def _step(problem: DispatchProblem, t: int, state: list[np.ndarray], a: dict) -> list[np.ndarray]:
    dt = problem.step_h
    bat, grid = problem.battery, problem.grid
    stored, grey = state
    pv = problem.pv_available_kw[:, t]
    load = problem.load_kw[:, :, t]
    total = load.sum(axis=1)
    own = np.minimum(pv, total)
    surplus, deficit = pv - own, total - own
    # 2. own battery covers own deficit down to the floor, grid-origin energy first
    floor = _floor_kwh(problem, t)
    eta_c, eta_d = bat.charge_efficiency, bat.discharge_efficiency
    dis_cap = np.minimum(bat.discharge_max_kw, np.maximum(stored - floor, 0.0) * eta_d / dt)
    dis = np.minimum(deficit, dis_cap)
    dis_grey = np.minimum(dis, grey * eta_d / dt)
    deficit -= dis
    green_left_kwh = stored - grey - (dis - dis_grey) * dt / eta_d
    spare = np.minimum(dis_cap - dis, np.maximum(green_left_kwh, 0.0) * eta_d / dt)
    # 3. share surplus PV and green battery energy with neighbours in deficit
    _share(problem, t, surplus, spare, deficit, dis, a)
    # 4. remaining surplus charges own battery
    room = np.maximum(bat.soc_max_kwh - stored, 0.0)
    ch = np.minimum(np.minimum(surplus, bat.charge_max_kw), room / (eta_c * dt))
    ch = np.where(dis > 0, 0.0, ch)  # a battery never charges and discharges in one step
    surplus -= ch
    # 5. grid, then curtail/spill and shed
    on = float(grid.available[t])
    exp = np.minimum(surplus, grid.export_limit_kw * on)
    imp = np.minimum(deficit, grid.import_limit_kw * on)
    surplus -= exp
    deficit -= imp
    spill = np.where(problem.pv_curtailable, 0.0, surplus)
    a["pv_used_kw"][:, t] = pv - np.where(problem.pv_curtailable, surplus, 0.0)
    a["surplus_spilled_kw"][:, t] = spill
    a["load_shed_kw"][:, :, t] = _shed(load, deficit)
    a["battery_charge_kw"][:, t] = ch
    a["battery_discharge_kw"][:, t] = dis
    a["battery_discharge_grey_kw"][:, t] = dis_grey
    a["grid_import_kw"][:, t] = imp
    a["grid_export_kw"][:, t] = exp
    keep = problem.keep_per_step
    stored = keep * (stored + (eta_c * ch - dis / eta_d) * dt)
    stored = np.clip(stored, 0.0, bat.soc_max_kwh)  # rounding only: limits already respected
    grey = np.clip(keep * (grey - dis_grey * dt / eta_d), 0.0, stored)
    a["stored_kwh"][:, t] = stored
    a["stored_grey_kwh"][:, t] = grey
    return [stored, grey]


def _share(problem: DispatchProblem, t: int, surplus: np.ndarray, spare: np.ndarray,
           deficit: np.ndarray, dis: np.ndarray, a: dict) -> None:
    """Send surplus PV, then spare battery power, to direct neighbours in deficit (in place)."""
    links = problem.links
    for l_idx in range(problem.n_links):
        cap, eta = links.capacity_kw[l_idx], links.efficiency[l_idx]
        for src, dst, key in ((links.from_node[l_idx], links.to_node[l_idx], "link_fwd_kw"),
                              (links.to_node[l_idx], links.from_node[l_idx], "link_bwd_kw")):
            need_sent = deficit[dst] / eta
            if need_sent <= 0 or cap <= 0:
                continue
            from_pv = min(surplus[src], need_sent, cap)
            from_bat = min(spare[src], need_sent - from_pv, cap - from_pv)
            sent = from_pv + from_bat
            if sent <= 0:
                continue
            surplus[src] -= from_pv
            spare[src] -= from_bat
            dis[src] += from_bat
            deficit[dst] = max(deficit[dst] - eta * sent, 0.0)
            a[key][l_idx, t] = sent
            break  # one direction per link and step


def _shed(load: np.ndarray, deficit: np.ndarray) -> np.ndarray:
    """Shed ``deficit`` [kW] per node from the highest tier index down to tier 0."""
    shed = np.zeros_like(load)
    rest = deficit.copy()
    for k in range(load.shape[1] - 1, -1, -1):
        shed[:, k] = np.minimum(load[:, k], rest)
        rest -= shed[:, k]
    return shed
