"""Sweep metrics from a policy's KPI document: hand-checked numbers."""

from __future__ import annotations

from dataclasses import asdict

from sim.sweep.metrics import DEFAULT_METRICS, METRIC_NAMES, metrics_from_kpis

RULES = {"shed_while_connected_kwh": 0.0, "resold_kwh": 0.25, "forbidden_export_kwh": 0.0,
         "export_while_shedding_kwh": 0.5}
BLOCK = {"total_cost_jpy": "1234.5678", "energy_cost_jpy": "1300", "energy_cost_adjusted_jpy": "1200",
         "grid_only_cost_jpy": "1500", "demand_charge_jpy": 30.0, "lost_load_jpy": 4.5678,
         "self_sufficiency_pct": None, "self_consumption_pct": 80.0, "grid_import_kwh": 10.0,
         "grid_export_kwh": 2.0, "p2p_delivered_kwh": 3.0, "p2p_from_surplus_kwh": 2.5,
         "peak_import_kw": 7.5, "curtailment_kwh": 0.0, "battery_throughput_kwh": 4.0,
         "equivalent_cycles": None, "unserved_critical_kwh": 0.0, "rule_violations": RULES,
         "rule_violations_kwh": 0.75, "settlement_periods_failing_checks": 0}
MEMBERS = {"a": {"grid_only_cost_jpy": "700.10", "energy_cost_jpy": "650.00"},
           "b": {"grid_only_cost_jpy": "800", "energy_cost_jpy": "812.35"}}


def test_metrics_from_kpis_hand_checked():
    outage = {"full_critical_service_h": 11.5, "min_stored_kwh": 3.25}
    m = metrics_from_kpis({"block": BLOCK, "members": MEMBERS, "outages": [outage, {}]})
    assert m.total_cost_jpy == 1234.5678 and m.demand_charge_jpy == 30.0
    assert m.savings_vs_standalone_jpy is None  # no stand-alone baseline ran
    assert m.self_sufficiency_pct is None and m.equivalent_cycles is None
    assert m.resold_kwh == 0.25 and m.export_while_shedding_kwh == 0.5 and m.rule_violations_kwh == 0.75
    assert m.min_member_savings_vs_grid_only_jpy == -12.35  # member b pays more than grid-only
    assert (m.outage_full_critical_service_h, m.outage_min_stored_kwh) == (11.5, 3.25)
    without = metrics_from_kpis({"block": {**BLOCK, "savings_vs_standalone_jpy": "99.5"},
                                 "members": MEMBERS, "outages": []})
    assert without.savings_vs_standalone_jpy == 99.5 and without.outage_min_stored_kwh is None
    assert set(asdict(m)) == set(METRIC_NAMES) and set(DEFAULT_METRICS) <= set(METRIC_NAMES)
