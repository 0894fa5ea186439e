"""Key figures of a simulation run, per member and for the block, as plain JSON-ready values.

Definitions (energies over the simulated span [kWh]):

* ``energy_cost_jpy``: sum of the settled bills (grid import - grid export + P2P paid + platform
  fee - P2P received), energy charges only (basic charges are the same under every policy).
* ``stored_energy_change_kwh`` and ``energy_cost_adjusted_jpy``: runs end with different
  amounts in store; the adjusted cost credits each node's change at its mean import price of
  the span times the discharge efficiency (what that energy would later displace), so policies
  compare on equal terms.
* ``savings_vs_standalone_jpy``: stand-alone adjusted cost minus this policy's.
* ``self_sufficiency_pct``: share of the served load not imported from the utility.
* ``self_consumption_pct``: share of the PV used that is not exported to the utility.
* ``equivalent_cycles``: battery discharge (AC) divided by nameplate capacity.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from gridctl.config import SiteConfig
from sim.outages import OutageWindow
from sim.runner.record import SimResult

__all__ = ["policy_kpis", "outage_kpis", "solver_kpis"]


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 3) if den > 1e-9 else None


def _member_money(result: SimResult) -> dict[str, dict[str, Decimal]]:
    out = {n: {"bill": Decimal(0), "counterfactual": Decimal(0), "bought": Decimal(0),
               "sold": Decimal(0), "price_sum": Decimal(0), "periods": 0} for n in result.node_ids}
    for _, settlement in result.settlements:
        for line in settlement.members:
            m = out[line.member_id]
            m["bill"] += line.bill_jpy
            m["counterfactual"] += line.counterfactual_jpy
            m["bought"] += line.p2p_bought_kwh
            m["sold"] += line.p2p_sold_kwh
            m["price_sum"] += line.import_price_jpy_per_kwh
            m["periods"] += 1
    return out


def _member(site: SiteConfig, result: SimResult, i: int, money: dict) -> dict:
    s, h = result.series, result.step_h
    node = site.nodes[i]
    imp = float(np.clip(s["grid_kw"][:, i], 0, None).sum() * h)
    exp = float(np.clip(-s["grid_kw"][:, i], 0, None).sum() * h)
    served = float((s["load_kw"][:, i] - s["critical_shed_kw"][:, i] - s["sheddable_shed_kw"][:, i]).sum() * h)
    pv = float(s["pv_kw"][:, i].sum() * h)
    delta_kwh = float(result.final_state.stored_kwh[i] - result.initial_stored_kwh[i])
    mean_price = float(money["price_sum"] / money["periods"]) if money["periods"] else 0.0
    eta_d = node.batteries[0].rating.discharge_efficiency_pct / 100 if node.batteries else 1.0
    credit = Decimal(str(round(delta_kwh * mean_price * eta_d, 4)))
    capacity = sum(b.rating.capacity_kwh for b in node.batteries)
    discharge = float(result.final_state.counters["battery_discharge_kwh"][i])
    return {
        "energy_cost_jpy": str(money["bill"]),
        "grid_only_cost_jpy": str(money["counterfactual"]),
        "stored_energy_change_kwh": round(delta_kwh, 6),
        "energy_cost_adjusted_jpy": str(money["bill"] - credit),
        "self_sufficiency_pct": _pct(served - imp, served),
        "self_consumption_pct": _pct(pv - exp, pv),
        "p2p_bought_kwh": float(money["bought"]),
        "p2p_sold_kwh": float(money["sold"]),
        "grid_import_kwh": round(imp, 6),
        "grid_export_kwh": round(exp, 6),
        "peak_import_kw": round(float(np.clip(s["grid_kw"][:, i], 0, None).max(initial=0.0)), 6),
        "curtailment_kwh": round(float(s["pv_curtailed_kw"][:, i].sum() * h), 6),
        "battery_throughput_kwh": round(discharge, 6),
        "equivalent_cycles": round(discharge / capacity, 4) if capacity else None,
        "unserved_critical_kwh": round(float(s["critical_shed_kw"][:, i].sum() * h), 6),
        f"unserved_tier_{node.load.shed_tier}_kwh": round(float(s["sheddable_shed_kw"][:, i].sum() * h), 6),
    }


def _block(site: SiteConfig, result: SimResult, members: dict[str, dict]) -> dict:
    s, h = result.series, result.step_h
    grid_block = s["grid_kw"].sum(axis=1)
    imp = float(np.clip(s["grid_kw"], 0, None).sum() * h)
    exp = float(np.clip(-s["grid_kw"], 0, None).sum() * h)
    served = float((s["load_kw"] - s["critical_shed_kw"] - s["sheddable_shed_kw"]).sum() * h)
    pv = float(s["pv_kw"].sum() * h)
    tiers: dict[str, float] = {"unserved_critical_kwh": float(s["critical_shed_kw"].sum() * h)}
    for i, node in enumerate(site.nodes):
        key = f"unserved_tier_{node.load.shed_tier}_kwh"
        tiers[key] = tiers.get(key, 0.0) + float(s["sheddable_shed_kw"][:, i].sum() * h)
    delivered = sum((Decimal(str(st.bought_kwh)) for _, st in result.settlements), Decimal(0))
    capacity = sum(b.rating.capacity_kwh for n in site.nodes for b in n.batteries)
    discharge = float(result.final_state.counters["battery_discharge_kwh"].sum())
    return {
        "energy_cost_jpy": str(sum(Decimal(m["energy_cost_jpy"]) for m in members.values())),
        "grid_only_cost_jpy": str(sum(Decimal(m["grid_only_cost_jpy"]) for m in members.values())),
        "stored_energy_change_kwh": round(sum(m["stored_energy_change_kwh"] for m in members.values()), 6),
        "energy_cost_adjusted_jpy": str(sum(Decimal(m["energy_cost_adjusted_jpy"]) for m in members.values())),
        "self_sufficiency_pct": _pct(served - imp, served),
        "self_consumption_pct": _pct(pv - exp, pv),
        "p2p_delivered_kwh": float(delivered),
        "p2p_sent_kwh": round(float(np.abs(s["link_flow_kw"]).sum() * h), 6),
        "link_losses_kwh": round(float(s["link_loss_kw"].sum() * h), 6),
        "grid_import_kwh": round(imp, 6),
        "grid_export_kwh": round(exp, 6),
        "peak_import_kw": round(float(np.clip(grid_block, 0, None).max(initial=0.0)), 6),
        "curtailment_kwh": round(float(s["pv_curtailed_kw"].sum() * h), 6),
        "battery_throughput_kwh": round(discharge, 6),
        "equivalent_cycles": round(discharge / capacity, 4) if capacity else None,
        **{k: round(v, 6) for k, v in tiers.items()},
        "settlement_periods": len(result.settlements),
        "settlement_periods_failing_checks": sum(1 for _, st in result.settlements if not st.checks.ok),
    }


def outage_kpis(result: SimResult, outages: tuple[OutageWindow, ...]) -> list[dict]:
    """Per outage: hours of full critical service, unserved energy by kind, minimum stored energy."""
    s, h = result.series, result.step_h
    out = []
    starts = result.times_utc
    for w in outages:
        mask = np.asarray((starts < w.end_utc) & (starts + np.timedelta64(int(result.step_s), "s") > w.start_utc))
        crit_shed = s["critical_shed_kw"][mask].sum(axis=1)
        full = crit_shed <= 1e-9
        # Consecutive hours from the outage start until critical load is first not fully served.
        first_gap = int(np.argmin(full)) if not full.all() else int(full.size)
        stored = s["stored_kwh"][mask].sum(axis=1)
        out.append({
            "outage": w.spec, "start_utc": w.start_utc.isoformat(), "end_utc": w.end_utc.isoformat(),
            "warning_h": w.warning.total_seconds() / 3600.0, "duration_h": w.duration_h,
            "steps_in_span": int(mask.sum()),
            "full_critical_service_h": round(float(full.sum() * h), 4),
            "critical_served_until_first_gap_h": round(first_gap * h, 4),
            "unserved_critical_kwh": round(float(crit_shed.sum() * h), 6),
            "unserved_sheddable_kwh": round(float(s["sheddable_shed_kw"][mask].sum() * h), 6),
            "min_stored_kwh": round(float(stored.min()), 6) if stored.size else None,
        })
    return out


def solver_kpis(result: SimResult) -> dict:
    """Re-plan count, times and statuses of the run's dispatch solves."""
    totals = np.array([r[0] for r in result.replans]) if result.replans else np.zeros(0)
    solver = np.array([r[1] for r in result.replans]) if result.replans else np.zeros(0)
    statuses: dict[str, int] = {}
    for r in result.replans:
        statuses[r[2]] = statuses.get(r[2], 0) + 1

    def q(arr, p):
        return round(float(np.percentile(arr, p)), 6) if arr.size else None

    return {"replans": int(totals.size), "replan_median_s": q(totals, 50),
            "replan_p95_s": q(totals, 95), "replan_max_s": q(totals, 100),
            "solver_median_s": q(solver, 50), "replan_total_s": round(float(totals.sum()), 4),
            "statuses": statuses, "fallback_decisions": result.fallback_decisions,
            "forecaster": result.forecaster,
            "phase_wall_s": {k: round(v, 4) for k, v in result.phase_s.items()}}


def policy_kpis(site: SiteConfig, result: SimResult, outages: tuple[OutageWindow, ...]) -> dict:
    """All key figures of one policy's run."""
    money = _member_money(result)
    members = {n: _member(site, result, i, money[n]) for i, n in enumerate(result.node_ids)}
    return {"block": _block(site, result, members), "members": members,
            "outages": outage_kpis(result, outages), "solver": solver_kpis(result),
            "wall_s": round(result.wall_s, 3)}
