"""Objective parts, violations, rule checks and plan assembly shared by every solve path."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from optimizer.plan import DispatchPlan, PlanArrays, PlanStatus, Violation
from optimizer.problem import DEMAND_PERIOD_H, DispatchProblem

__all__ = ["RuleBreaches", "clamp_initial_stored", "make_plan", "node_net_send_kw",
           "objective_parts", "period_peaks_kw", "resold_kw", "rule_breaches", "tier_fill_kwh"]

#: Amounts below this are solver noise, not violations [kW or kWh].
_TOL = 1e-6


def clamp_initial_stored(problem: DispatchProblem) -> tuple[np.ndarray, np.ndarray, list[Violation]]:
    """Clamp measured stored energy to ``[0, soc_max_kwh]`` (a note per node clamped) and its
    grid-origin part to ``[0, stored]`` (zero where the node has no grid connection).

    Returns
    -------
    stored0_kwh, grey0_kwh : ndarray, shape (N,)
        Usable initial stored energy and its grid-origin part [kWh].
    notes : list of Violation
    """
    bat = problem.battery
    stored0 = np.clip(bat.stored_kwh, 0.0, bat.soc_max_kwh)
    notes = []
    for n in np.flatnonzero(np.abs(stored0 - bat.stored_kwh) > _TOL):
        notes.append(Violation(
            "initial_stored_clamped", problem.node_ids[n], None,
            float(bat.stored_kwh[n] - stored0[n]), "kWh",
            f"measured stored energy {bat.stored_kwh[n]:.3f} kWh outside "
            f"[0, {bat.soc_max_kwh[n]:.3f}] kWh, clamped to {stored0[n]:.3f} kWh"))
    grey0 = np.clip(bat.grey_stored_kwh, 0.0, stored0)
    grey0 = np.where(problem.grid.import_limit_kw > 0, grey0, 0.0)
    return stored0, grey0, notes


def node_net_send_kw(problem: DispatchProblem, fwd_kw: np.ndarray, bwd_kw: np.ndarray) -> np.ndarray:
    """Sending-end power out of each node minus power received by it [kW], shape (N, T)."""
    links = problem.links
    eta = links.efficiency[:, None]
    out = np.zeros((problem.n_nodes, np.shape(fwd_kw)[1] if np.ndim(fwd_kw) == 2
                    else problem.n_steps))
    np.add.at(out, links.from_node, fwd_kw - eta * bwd_kw)
    np.add.at(out, links.to_node, bwd_kw - eta * fwd_kw)
    return out


def period_peaks_kw(problem: DispatchProblem, import_kw: np.ndarray) -> np.ndarray:
    """Highest demand-period average import of each node, at least the peak so far [kW]."""
    grid = problem.grid
    energy = np.zeros((problem.n_nodes, grid.n_periods))
    np.add.at(energy.T, grid.period_of_step, (import_kw * problem.step_h).T)
    energy[:, 0] += grid.period_import_so_far_kwh
    average = energy / max(DEMAND_PERIOD_H, problem.step_h)
    return np.maximum(average.max(axis=1), grid.peak_import_so_far_kw)


def tier_fill_kwh(problem: DispatchProblem, import_kw: np.ndarray) -> np.ndarray:
    """Energy in each tier block, filled in order [kWh], shape (N, G, NB)."""
    tiers = problem.grid.tiers
    total = np.zeros(tiers.width_kwh.shape[:2])
    np.add.at(total.T, tiers.group_of_step, (import_kw * problem.step_h).T)
    width = tiers.width_kwh
    before = np.concatenate([np.zeros(width.shape[:-1] + (1,)),
                             np.cumsum(width[..., :-1], axis=-1)], axis=-1)
    return np.clip(total[..., None] - before, 0.0, width)


def objective_parts(problem: DispatchProblem, a: PlanArrays) -> dict[str, float]:
    """Each term of the objective [JPY] for the plan arrays ``a``."""
    dt = problem.step_h
    grid, bat, pen = problem.grid, problem.battery, problem.penalties
    tie = pen.tie_break_jpy_per_kwh * dt
    soc_short = np.maximum(bat.soc_min_kwh - a.stored_kwh.min(axis=1), 0.0)
    res_short = np.maximum(problem.reserve_kwh - a.stored_kwh.sum(axis=0), 0.0)
    res_short = np.where(grid.available, res_short, 0.0)
    shed_kwh = a.load_shed_kw * dt
    islanded = ~grid.available
    tier_cost = float(np.sum(tier_fill_kwh(problem, a.grid_import_kw)
                             * grid.tiers.increment_jpy_per_kwh))
    return {
        "import_cost_jpy": float(np.sum(grid.import_price_jpy_per_kwh * a.grid_import_kw) * dt)
        + tier_cost,
        "export_revenue_jpy": -float(np.sum(grid.export_price_jpy_per_kwh * a.grid_export_kw) * dt),
        "battery_wear_jpy": float(np.sum(bat.wear_cost_jpy_per_kwh[:, None]
                                         * a.battery_discharge_kw) * dt),
        "terminal_value_jpy": -float(np.sum(bat.terminal_value_jpy_per_kwh * a.stored_kwh[:, -1])),
        "lost_load_jpy": float(np.sum(problem.value_of_lost_load_jpy_per_kwh[None, :, None]
                                      * shed_kwh[:, :, islanded])),
        "unserved_penalty_jpy": float(np.sum(shed_kwh[:, :, ~islanded])
                                      * pen.unserved_connected_jpy_per_kwh),
        "demand_charge_jpy": float(np.sum(grid.demand_charge_jpy_per_kw * (
            period_peaks_kw(problem, a.grid_import_kw) - grid.peak_import_so_far_kw))),
        "reserve_penalty_jpy": float(np.sum(res_short) * pen.reserve_shortfall_jpy_per_kwh_h * dt),
        "soc_penalty_jpy": float(np.sum(soc_short) * pen.soc_below_min_jpy_per_kwh),
        "spill_penalty_jpy": float(np.sum(a.surplus_spilled_kw) * pen.surplus_spill_jpy_per_kwh * dt),
        "tie_break_jpy": float(tie * (np.sum(a.battery_charge_kw) + np.sum(a.grid_import_kw)
                                      + np.sum(a.link_fwd_kw + a.link_bwd_kw))),
    }


def _violations(problem: DispatchProblem, a: PlanArrays) -> list[Violation]:
    out: list[Violation] = []
    ids = problem.node_ids
    soc_short = problem.battery.soc_min_kwh[:, None] - a.stored_kwh
    for n, t in zip(*np.nonzero(soc_short > _TOL)):
        out.append(Violation("soc_below_min", ids[n], int(t), float(soc_short[n, t]), "kWh",
                             "stored energy below its minimum (measured state or no way back)"))
    res_short = problem.reserve_kwh - a.stored_kwh.sum(axis=0)
    for t in np.flatnonzero((res_short > _TOL) & problem.grid.available):
        out.append(Violation("reserve_shortfall", None, int(t), float(res_short[t]), "kWh",
                             "block stored energy below the outage reserve"))
    unserved = a.load_shed_kw.sum(axis=1) * problem.grid.available[None, :]
    for n, t in zip(*np.nonzero(unserved > _TOL)):
        out.append(Violation("load_unserved_while_connected", ids[n], int(t),
                             float(unserved[n, t]), "kW",
                             "load exceeds every supply limit while grid-connected (not shed)"))
    crit = a.load_shed_kw[:, 0, :] * ~problem.grid.available[None, :]
    for n, t in zip(*np.nonzero(crit > _TOL)):
        out.append(Violation("critical_load_shed", ids[n], int(t), float(crit[n, t]), "kW",
                             "critical load cannot be served"))
    spill = a.surplus_spilled_kw
    for n, t in zip(*np.nonzero(spill > _TOL)):
        out.append(Violation("surplus_spilled", ids[n], int(t), float(spill[n, t]), "kW",
                             "non-curtailable PV that nothing can absorb"))
    return out


def make_plan(problem: DispatchProblem, a: PlanArrays, status: PlanStatus,
              initial_notes: list[Violation], **diagnostics) -> DispatchPlan:
    """Assemble a ``DispatchPlan`` from full-size arrays ``a``."""
    parts = objective_parts(problem, a)
    eta = problem.links.efficiency[:, None]
    return DispatchPlan(
        status=status,
        node_ids=problem.node_ids,
        step_s=problem.step_s,
        pv_used_kw=a.pv_used_kw,
        pv_curtailed_kw=np.maximum(problem.pv_available_kw - a.pv_used_kw, 0.0),
        battery_charge_kw=a.battery_charge_kw,
        battery_discharge_kw=a.battery_discharge_kw,
        battery_charge_grey_kw=a.battery_charge_grey_kw,
        battery_discharge_grey_kw=a.battery_discharge_grey_kw,
        stored_kwh=a.stored_kwh,
        stored_grey_kwh=a.stored_grey_kwh,
        grid_import_kw=a.grid_import_kw,
        grid_export_kw=a.grid_export_kw,
        load_served_kw=problem.load_kw - a.load_shed_kw,
        load_shed_kw=a.load_shed_kw,
        surplus_spilled_kw=a.surplus_spilled_kw,
        link_flow_kw=a.link_fwd_kw - a.link_bwd_kw,
        link_loss_kw=(1.0 - eta) * (a.link_fwd_kw + a.link_bwd_kw),
        objective_jpy=float(sum(parts.values())),
        objective_parts=parts,
        violations=tuple(initial_notes) + tuple(_violations(problem, a)),
        **diagnostics,
    )


@dataclass(frozen=True)
class RuleBreaches:
    """How much of a plan breaks each rule of the block [kWh over the horizon].

    Attributes
    ----------
    shed_while_connected_kwh : float
        Load not served in grid-connected steps.
    resold_kwh : float
        Net link sending of a node in a grid-connected step beyond its own surplus: its PV
        plus green battery discharge less its load (see :func:`resold_kw`).
    forbidden_export_kwh : float
        Export beyond the own PV surplus at nodes whose contract forbids battery export.
    export_while_shedding_kwh : float
        Export of a node in a step in which it sheds load.
    import_and_export_kwh : float
        Simultaneous import and export of one node.
    """

    shed_while_connected_kwh: float
    resold_kwh: float
    forbidden_export_kwh: float
    export_while_shedding_kwh: float
    import_and_export_kwh: float

    @property
    def total_kwh(self) -> float:
        return float(sum(getattr(self, f.name) for f in fields(self)))


def resold_kw(net_send_kw: np.ndarray, pv_kw: np.ndarray, discharge_kw: np.ndarray,
              discharge_grey_kw: np.ndarray, load_kw: np.ndarray,
              grid_available: np.ndarray) -> np.ndarray:
    """Power a node sends net over its links beyond its own surplus [kW], (N, T).

    The own surplus is the node's PV plus its green (PV- or P2P-origin) battery discharge
    less its load: grid power (imported, or stored and discharged) serves at most the node's
    own load, so a node that imports or uses grey energy for its load while sending sells
    grid power, directly or by displacement.  Zero while islanded (there is no utility power
    to resell).  The optimizer's rule checks and the simulator's key figures both count
    resale with this function.
    """
    send = np.maximum(net_send_kw, 0.0)
    own = pv_kw + (discharge_kw - discharge_grey_kw) - load_kw
    out = np.maximum(send - np.maximum(own, 0.0), 0.0)
    return out * np.asarray(grid_available, bool)


def rule_breaches(problem: DispatchProblem, plan: DispatchPlan, tol_kw: float = 1e-5) -> RuleBreaches:
    """Check a plan against the rules of the block (see :class:`RuleBreaches`)."""
    dt = problem.step_h
    fwd, bwd = np.maximum(plan.link_flow_kw, 0.0), np.maximum(-plan.link_flow_kw, 0.0)
    send = node_net_send_kw(problem, fwd, bwd)
    load = plan.load_served_kw.sum(axis=1)
    resold = resold_kw(send, plan.pv_used_kw, plan.battery_discharge_kw,
                       plan.battery_discharge_grey_kw, load, problem.grid.available)
    shed = plan.load_shed_kw.sum(axis=1)
    surplus = np.maximum(problem.pv_available_kw - problem.load_kw.sum(axis=1), 0.0)
    fit = ~problem.battery.grid_export_allowed[:, None]
    over = np.maximum(plan.grid_export_kw - np.minimum(surplus, plan.pv_used_kw), 0.0) * fit

    def kwh(arr: np.ndarray) -> float:
        return float(np.sum(np.where(arr > tol_kw, arr, 0.0)) * dt)

    return RuleBreaches(
        shed_while_connected_kwh=kwh(shed * problem.grid.available[None, :]),
        resold_kwh=kwh(resold),
        forbidden_export_kwh=kwh(over),
        export_while_shedding_kwh=kwh(np.where(shed > tol_kw, plan.grid_export_kw, 0.0)),
        import_and_export_kwh=kwh(np.minimum(plan.grid_import_kw, plan.grid_export_kw)),
    )
