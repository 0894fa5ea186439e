"""Objective parts, violations and plan assembly shared by the solver path and the fallback."""

from __future__ import annotations

import numpy as np

from optimizer.plan import DispatchPlan, PlanStatus, Violation
from optimizer.problem import DispatchProblem

__all__ = ["clamp_initial_stored", "make_plan"]

#: Amounts below this are solver noise, not violations [kW or kWh].
_TOL = 1e-6


def clamp_initial_stored(problem: DispatchProblem) -> tuple[np.ndarray, list[Violation]]:
    """Clamp measured stored energy to ``[0, soc_max_kwh]``, with a note per node clamped.

    Returns
    -------
    stored0_kwh : ndarray, shape (N,)
        Usable initial stored energy [kWh].
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
    return stored0, notes


def objective_parts(problem: DispatchProblem, a: dict[str, np.ndarray]) -> dict[str, float]:
    """Each term of the objective [JPY] for the plan arrays ``a`` (see ``DispatchPlan``)."""
    dt = problem.step_h
    grid, bat, pen = problem.grid, problem.battery, problem.penalties
    tie = pen.tie_break_jpy_per_kwh * dt
    peak_kw = np.maximum(a["grid_import_kw"].max(axis=1), grid.peak_import_so_far_kw)
    # The deepest dip below soc_min of each battery is paid once (see optimizer.highs_model).
    soc_short = np.maximum(bat.soc_min_kwh - a["stored_kwh"].min(axis=1), 0.0)
    res_short = np.maximum(problem.reserve_kwh - a["stored_kwh"].sum(axis=0), 0.0)
    res_short = np.where(grid.available, res_short, 0.0)
    link_sent = a["link_fwd_kw"] + a["link_bwd_kw"]
    return {
        "import_cost_jpy": float(np.sum(grid.import_price_jpy_per_kwh * a["grid_import_kw"]) * dt),
        "export_revenue_jpy": -float(np.sum(grid.export_price_jpy_per_kwh * a["grid_export_kw"])
                                     * dt),
        "battery_wear_jpy": float(np.sum(bat.wear_cost_jpy_per_kwh[:, None]
                                         * a["battery_discharge_kw"]) * dt),
        "terminal_value_jpy": -float(np.sum(bat.terminal_value_jpy_per_kwh
                                            * a["stored_kwh"][:, -1])),
        "lost_load_jpy": float(np.sum(problem.value_of_lost_load_jpy_per_kwh[None, :, None]
                                      * a["load_shed_kw"]) * dt),
        "demand_charge_jpy": float(np.sum(grid.demand_charge_jpy_per_kw
                                          * (peak_kw - grid.peak_import_so_far_kw))),
        "reserve_penalty_jpy": float(np.sum(res_short) * pen.reserve_shortfall_jpy_per_kwh),
        "soc_penalty_jpy": float(np.sum(soc_short) * pen.soc_below_min_jpy_per_kwh),
        "spill_penalty_jpy": float(np.sum(a["surplus_spilled_kw"])
                                   * pen.surplus_spill_jpy_per_kwh * dt),
        "tie_break_jpy": float(tie * (np.sum(a["battery_charge_kw"]) + np.sum(a["grid_import_kw"])
                                      + np.sum(link_sent))),
    }


def _violations(problem: DispatchProblem, a: dict[str, np.ndarray]) -> list[Violation]:
    out: list[Violation] = []
    ids = problem.node_ids
    soc_short = problem.battery.soc_min_kwh[:, None] - a["stored_kwh"]
    for n, t in zip(*np.nonzero(soc_short > _TOL)):
        out.append(Violation("soc_below_min", ids[n], int(t), float(soc_short[n, t]), "kWh",
                             "stored energy below its minimum (measured state or no way back)"))
    res_short = problem.reserve_kwh - a["stored_kwh"].sum(axis=0)
    for t in np.flatnonzero((res_short > _TOL) & problem.grid.available):
        out.append(Violation("reserve_shortfall", None, int(t), float(res_short[t]), "kWh",
                             "block stored energy below the outage reserve"))
    crit = a["load_shed_kw"][:, 0, :]
    for n, t in zip(*np.nonzero(crit > _TOL)):
        out.append(Violation("critical_load_shed", ids[n], int(t), float(crit[n, t]), "kW",
                             "critical load cannot be served"))
    spill = a["surplus_spilled_kw"]
    for n, t in zip(*np.nonzero(spill > _TOL)):
        out.append(Violation("surplus_spilled", ids[n], int(t), float(spill[n, t]), "kW",
                             "non-curtailable PV that nothing can absorb"))
    return out


def make_plan(problem: DispatchProblem, a: dict[str, np.ndarray], status: PlanStatus,
              initial_notes: list[Violation], **diagnostics) -> DispatchPlan:
    """Assemble a ``DispatchPlan`` from full-size arrays ``a`` (nodes x steps etc.).

    ``a`` holds ``pv_used_kw``, ``battery_charge_kw``, ``battery_discharge_kw``,
    ``stored_kwh``, ``grid_import_kw``, ``grid_export_kw``, ``load_shed_kw``,
    ``surplus_spilled_kw``, ``link_fwd_kw`` and ``link_bwd_kw``.
    """
    parts = objective_parts(problem, a)
    eta = problem.links.efficiency[:, None]
    return DispatchPlan(
        status=status,
        node_ids=problem.node_ids,
        step_s=problem.step_s,
        pv_used_kw=a["pv_used_kw"],
        pv_curtailed_kw=np.maximum(problem.pv_available_kw - a["pv_used_kw"], 0.0),
        battery_charge_kw=a["battery_charge_kw"],
        battery_discharge_kw=a["battery_discharge_kw"],
        stored_kwh=a["stored_kwh"],
        grid_import_kw=a["grid_import_kw"],
        grid_export_kw=a["grid_export_kw"],
        load_served_kw=problem.load_kw - a["load_shed_kw"],
        load_shed_kw=a["load_shed_kw"],
        surplus_spilled_kw=a["surplus_spilled_kw"],
        link_flow_kw=a["link_fwd_kw"] - a["link_bwd_kw"],
        link_loss_kw=(1.0 - eta) * (a["link_fwd_kw"] + a["link_bwd_kw"]),
        objective_jpy=float(sum(parts.values())),
        objective_parts=parts,
        violations=tuple(initial_notes) + tuple(_violations(problem, a)),
        **diagnostics,
    )
