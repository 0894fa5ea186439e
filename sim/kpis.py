"""Key figures of a simulation run, per member and for the block, as plain JSON-ready values.

Definitions (energies over the simulated span [kWh]):

* ``energy_cost_jpy``: sum of the settled bills (grid import - grid export + P2P paid + platform
  fee - P2P received), energy charges only.
* ``stored_energy_change_kwh`` and ``energy_cost_adjusted_jpy``: runs end with different
  amounts in store; the adjusted cost credits each node's change at the value of a stored kWh
  (:func:`gridctl.controller.valuation.stored_energy_value_jpy_per_kwh` at the cheapest import
  price the member met: the optimizer's terminal value), so policies compare on equal terms.
* ``demand_charge_jpy``: what raising a member's contracted demand costs: its monthly rate
  times the months that peak is billed for (``demand_window_months``) times how far the run's
  highest 30-minute average import went above the contracted demand at the start (the same
  for every policy).  The basic charge at the old contracted demand is the same under every
  policy and left out.
* ``lost_load_jpy``: unserved energy at the configured value of lost load of its tier.
* ``total_cost_jpy`` = adjusted energy cost + demand charge + lost load: what the policies
  are compared by; ``savings_vs_standalone_jpy`` is stand-alone's minus this policy's.
* ``self_sufficiency_pct``: share of the served load not imported, with the import adjusted
  for the stored-energy change (energy taken from store counts as import still to come).
* ``self_consumption_pct``: share of the PV used that is not exported to the utility.
* ``peak_import_kw``: highest 30-minute (JST period) average import, per member and of the
  block's total.
* ``p2p_sent_kwh``, ``p2p_resold_kwh``, ``p2p_from_surplus_kwh``: what members sent net over
  their links, the part that was not their own surplus, and the rest.
* ``rule_violations``: per rule, the energy that broke it on the plant (:mod:`sim.rules_check`);
  ``rule_violations_kwh`` their sum.  Any of them above zero is a defect.
* ``equivalent_cycles``: battery discharge (AC) divided by nameplate capacity.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.valuation import stored_energy_value_jpy_per_kwh
from gridctl.tariffs import settlement_period
from sim.outages import OutageWindow
from sim.rules_check import PlantRules, check_rules
from sim.runner.record import SimResult

__all__ = ["policy_kpis", "outage_kpis", "solver_kpis"]


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 3) if den > 1e-9 else None


def _member_money(result: SimResult) -> dict[str, dict[str, Decimal]]:
    out = {n: {"bill": Decimal(0), "counterfactual": Decimal(0), "bought": Decimal(0),
               "sold": Decimal(0), "cheapest": None, "periods": 0} for n in result.node_ids}
    for _, settlement in result.settlements:
        for line in settlement.members:
            m = out[line.member_id]
            m["bill"] += line.bill_jpy
            m["counterfactual"] += line.grid_only_jpy
            m["bought"] += line.p2p_bought_kwh
            m["sold"] += line.p2p_sold_kwh
            price = line.import_price_jpy_per_kwh
            m["cheapest"] = price if m["cheapest"] is None else min(m["cheapest"], price)
            m["periods"] += 1
    return out


def period_peaks_kw(result: SimResult, import_kw: np.ndarray) -> np.ndarray:
    """Highest JST 30-minute average of ``import_kw`` (T, ...) [kW] over the run."""
    starts = [settlement_period(t.to_pydatetime())[0] for t in result.times_utc]
    keys = np.unique(np.array([s.timestamp() for s in starts]), return_inverse=True)[1]
    sums = np.zeros((keys.max() + 1,) + import_kw.shape[1:]) if len(keys) else np.zeros((1,) + import_kw.shape[1:])
    np.add.at(sums, keys, import_kw * result.step_h)
    return sums.max(axis=0) / 0.5


def _money_kpis(site: SiteConfig, result: SimResult, i: int, money: dict, peak_kw: float) -> dict:
    """Energy cost, stored-energy credit, demand charge and lost load of node ``i`` [JPY]."""
    s, h, node = result.series, result.step_h, site.nodes[i]
    delta_kwh = float(result.final_state.stored_kwh[i] - result.initial_stored_kwh[i])
    rating = node.batteries[0].rating if node.batteries else None
    value = stored_energy_value_jpy_per_kwh(
        rating.discharge_efficiency_pct / 100 if rating else 1.0,
        float(money["cheapest"]) if money["cheapest"] is not None else 0.0,
        rating.wear_cost_jpy_per_kwh if rating else 0.0)
    credit = Decimal(str(round(delta_kwh * value, 4)))
    contract = node.contract
    raise_kw = max(peak_kw - float(result.opening_demand_kw[i]), 0.0)
    demand = contract.demand_charge_jpy_per_kw_month * contract.demand_window_months * raise_kw
    isl = site.islanding
    tier_voll = {t.tier: t.value_of_lost_load_jpy_per_kwh for t in isl.shed_order}
    lost = (float(s["critical_shed_kw"][:, i].sum()) * isl.critical_value_of_lost_load_jpy_per_kwh
            + float(s["sheddable_shed_kw"][:, i].sum()) * tier_voll.get(node.load.shed_tier, 0.0)) * h
    adjusted = money["bill"] - credit
    total = adjusted + Decimal(str(round(demand, 4))) + Decimal(str(round(lost, 4)))
    return {"energy_cost_jpy": str(money["bill"]), "grid_only_cost_jpy": str(money["counterfactual"]),
            "stored_energy_change_kwh": round(delta_kwh, 6), "energy_cost_adjusted_jpy": str(adjusted),
            "demand_charge_jpy": round(demand, 4), "contracted_demand_raise_kw": round(raise_kw, 6),
            "lost_load_jpy": round(lost, 4), "total_cost_jpy": str(total)}


def _energy_kpis(result: SimResult, served: float, imp: float, exp: float, pv: float,
                 delta_kwh: float, eta_d: float) -> dict:
    adjusted_import = max(imp - delta_kwh * eta_d, 0.0)
    return {"self_sufficiency_pct": _pct(served - adjusted_import, served),
            "self_consumption_pct": _pct(pv - exp, pv),
            "grid_import_kwh": round(imp, 6), "grid_export_kwh": round(exp, 6)}


def _member(site: SiteConfig, result: SimResult, i: int, money: dict, rules: PlantRules) -> dict:
    s, h = result.series, result.step_h
    node = site.nodes[i]
    grid = s["grid_kw"][:, i]
    imp = float(np.clip(grid, 0, None).sum() * h)
    exp = float(np.clip(-grid, 0, None).sum() * h)
    served = float((s["load_kw"][:, i] - s["critical_shed_kw"][:, i] - s["sheddable_shed_kw"][:, i]).sum() * h)
    pv = float(s["pv_kw"][:, i].sum() * h)
    delta_kwh = float(result.final_state.stored_kwh[i] - result.initial_stored_kwh[i])
    eta_d = node.batteries[0].rating.discharge_efficiency_pct / 100 if node.batteries else 1.0
    peak = float(period_peaks_kw(result, np.clip(grid, 0, None)))
    capacity = sum(b.rating.capacity_kwh for b in node.batteries)
    discharge = float(result.final_state.counters["battery_discharge_kwh"][i])
    violations = rules.totals_kwh(h, i)
    sent = float(rules.sent_kw[:, i].sum() * h)
    return {
        **_money_kpis(site, result, i, money, peak),
        **_energy_kpis(result, served, imp, exp, pv, delta_kwh, eta_d),
        "p2p_bought_kwh": float(money["bought"]), "p2p_sold_kwh": float(money["sold"]),
        "p2p_sent_kwh": round(sent, 6), "p2p_resold_kwh": violations["resold_kwh"],
        "peak_import_kw": round(peak, 6),
        "curtailment_kwh": round(float(s["pv_curtailed_kw"][:, i].sum() * h), 6),
        "battery_throughput_kwh": round(discharge, 6),
        "equivalent_cycles": round(discharge / capacity, 4) if capacity else None,
        "unserved_critical_kwh": round(float(s["critical_shed_kw"][:, i].sum() * h), 6),
        f"unserved_tier_{node.load.shed_tier}_kwh": round(float(s["sheddable_shed_kw"][:, i].sum() * h), 6),
        "rule_violations": violations, "rule_violations_kwh": round(sum(violations.values()), 6),
    }


def _sum_str(members: dict, key: str) -> str:
    return str(sum((Decimal(str(m[key])) for m in members.values()), Decimal(0)))


def _block(site: SiteConfig, result: SimResult, members: dict[str, dict], rules: PlantRules) -> dict:
    s, h = result.series, result.step_h
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
    delta = sum(m["stored_energy_change_kwh"] for m in members.values())
    violations = rules.totals_kwh(h)
    sent = float(rules.sent_kw.sum() * h)
    return {
        "energy_cost_jpy": _sum_str(members, "energy_cost_jpy"),
        "grid_only_cost_jpy": _sum_str(members, "grid_only_cost_jpy"),
        "stored_energy_change_kwh": round(delta, 6),
        "energy_cost_adjusted_jpy": _sum_str(members, "energy_cost_adjusted_jpy"),
        "demand_charge_jpy": round(sum(m["demand_charge_jpy"] for m in members.values()), 4),
        "lost_load_jpy": round(sum(m["lost_load_jpy"] for m in members.values()), 4),
        "total_cost_jpy": _sum_str(members, "total_cost_jpy"),
        **_energy_kpis(result, served, imp, exp, pv, delta, 0.95),
        "p2p_delivered_kwh": float(delivered),
        "p2p_sent_kwh": round(sent, 6), "p2p_resold_kwh": violations["resold_kwh"],
        "p2p_from_surplus_kwh": round(sent - violations["resold_kwh"], 6),
        "link_losses_kwh": round(float(s["link_loss_kw"].sum() * h), 6),
        "peak_import_kw": round(float(period_peaks_kw(result, np.clip(s["grid_kw"], 0, None).sum(axis=1))), 6),
        "curtailment_kwh": round(float(s["pv_curtailed_kw"].sum() * h), 6),
        "battery_throughput_kwh": round(discharge, 6),
        "equivalent_cycles": round(discharge / capacity, 4) if capacity else None,
        **{k: round(v, 6) for k, v in tiers.items()},
        "rule_violations": violations, "rule_violations_kwh": round(sum(violations.values()), 6),
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
    rules = check_rules(site, result)
    members = {n: _member(site, result, i, money[n], rules) for i, n in enumerate(result.node_ids)}
    return {"block": _block(site, result, members, rules), "members": members,
            "outages": outage_kpis(result, outages), "solver": solver_kpis(result),
            "wall_s": round(result.wall_s, 3)}
