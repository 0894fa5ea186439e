"""The block's rules in the optimizer, on hand-checked problems.

Each rule is tried where the objective would gain by breaking it; the plan must keep it and
:func:`optimizer.rule_breaches` must find nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Dispatcher, ImportTiers, PlanStatus, fallback_plan, rule_breaches
from tests.optimizer.kit import assert_valid, make_problem


def _solve(problem):
    plan = Dispatcher().solve(problem)
    assert plan.status is PlanStatus.OPTIMAL
    assert_valid(problem, plan)
    return plan


def test_load_beyond_every_supply_while_connected_is_reported_never_shed():
    # 10 kW of load, 5 kW of connection, nothing else: connected, 5 kW stay unserved and are
    # a violation; islanded (step 1) the tiers are shed by value (tier 1 first).
    problem = make_problem(n_steps=2, n_tiers=2, load=[[[2.0, 2.0], [8.0, 8.0]]],
                           import_limit=5.0, available=[True, False])
    plan = _solve(problem)
    kinds = {(v.kind, v.step) for v in plan.violations}
    assert ("load_unserved_while_connected", 0) in kinds
    unserved = [v.amount for v in plan.violations if v.kind == "load_unserved_while_connected"]
    assert unserved == pytest.approx([5.0])
    assert plan.load_shed_kw[0, :, 1].tolist() == pytest.approx([2.0, 8.0])  # islanded: all


def test_a_demand_charge_never_makes_the_plan_shed_while_connected():
    # The mall's demand charge: raising the contracted 50 kW to 100 kW costs 1800 x 12 JPY/kW,
    # far more than the lost-load value of its sheddable tier (80 JPY/kWh for 1 h).  Shedding
    # is not an option while the grid is there: it imports and pays.
    problem = make_problem(n_steps=1, n_tiers=2, load=[[[10.0], [90.0]]], import_limit=300.0,
                           voll=[5000.0, 80.0], demand_charge=1800.0 * 12, peak_so_far=50.0)
    plan = _solve(problem)
    assert plan.load_shed_kw.sum() == pytest.approx(0.0, abs=1e-6)
    assert plan.grid_import_kw[0, 0] == pytest.approx(100.0)
    assert plan.objective_parts["demand_charge_jpy"] == pytest.approx(1800.0 * 12 * 50.0)


def test_grid_power_is_not_resold_over_a_link():
    # n0 imports at 20 JPY/kWh, n1 at 40; a lossless link would let n0 import for n1 (a
    # retail business).  The plan keeps each node on its own grid connection.
    problem = make_problem(n_nodes=2, n_steps=2, load=[[[1.0, 1.0]], [[3.0, 3.0]]],
                           import_price=[[20.0, 20.0], [40.0, 40.0]], links=[(0, 1)],
                           link_capacity=10.0, link_efficiency=1.0)
    plan = _solve(problem)
    assert np.abs(plan.link_flow_kw).max() == pytest.approx(0.0, abs=1e-6)
    assert plan.grid_import_kw.ravel().tolist() == pytest.approx([1.0, 1.0, 3.0, 3.0])
    assert rule_breaches(problem, plan).total_kwh == 0.0


def test_pv_surplus_is_shared_but_not_topped_up_from_the_grid():
    # n0 has 3 kW PV for 1 kW of load: it may send its 2 kW surplus to n1 (dearer grid), but
    # not a kW more bought from its cheaper grid.
    problem = make_problem(n_nodes=2, n_steps=1, pv=[[3.0], [0.0]], load=[[[1.0]], [[5.0]]],
                           import_price=[[20.0], [40.0]], export_price=5.0, links=[(0, 1)],
                           link_capacity=10.0, link_efficiency=1.0)
    plan = _solve(problem)
    assert plan.link_flow_kw[0, 0] == pytest.approx(2.0)
    assert plan.grid_import_kw[:, 0].tolist() == pytest.approx([0.0, 3.0])


def test_battery_energy_from_the_grid_stays_home_and_green_energy_may_go():
    # n0's battery holds 4 kWh; n1 lacks 3 kW for one hour at 40 JPY/kWh while n0 pays 20.
    # Green (PV-origin) energy may be sold to n1; the same energy charged from the grid
    # may only serve n0 itself.  n0 has no load and a FIT meter, so grey energy stays.
    def problem(grey_kwh):
        return make_problem(n_nodes=2, n_steps=1, load=[[[0.0]], [[3.0]]], stored=[4.0, 0.0],
                            soc_max=[4.0, 0.0], charge_max=[4.0, 0.0], discharge_max=[4.0, 0.0],
                            import_price=[[20.0], [40.0]], links=[(0, 1)], link_capacity=10.0,
                            link_efficiency=1.0, grey=[grey_kwh, 0.0], battery_export=False)

    green = _solve(problem(0.0))
    assert green.link_flow_kw[0, 0] == pytest.approx(3.0)
    grey = _solve(problem(4.0))
    assert grey.link_flow_kw[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert grey.battery_discharge_kw[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert grey.stored_grey_kwh[0, 0] == pytest.approx(4.0)


def test_no_battery_displacement_while_importing():
    # n0 needs 2 kW itself and holds 3 kWh of green energy; n1 (dearer) needs 3 kW.  Sending
    # the battery to n1 while n0 imports its own load would be resale by displacement:
    # n0 either covers itself from the battery and sends only the rest, or sends nothing.
    problem = make_problem(n_nodes=2, n_steps=1, load=[[[2.0]], [[3.0]]], stored=[3.0, 0.0],
                           soc_max=[3.0, 0.0], charge_max=[3.0, 0.0], discharge_max=[3.0, 0.0],
                           import_price=[[20.0], [40.0]], links=[(0, 1)], link_capacity=10.0,
                           link_efficiency=1.0)
    plan = _solve(problem)
    sent, imported = plan.link_flow_kw[0, 0], plan.grid_import_kw[0, 0]
    assert min(sent, imported) == pytest.approx(0.0, abs=1e-6)
    assert sent <= plan.battery_discharge_kw[0, 0] - 2.0 + 1e-6


def test_a_fit_meter_exports_neither_battery_nor_neighbour_energy():
    # n1's contract forbids battery export; its export pays 50 JPY/kWh (a premium): neither
    # its own full battery nor n0's PV passing through may reach the grid there.
    problem = make_problem(n_nodes=2, n_steps=1, pv=[[5.0], [1.0]], load=[[[0.0]], [[0.5]]],
                           stored=[0.0, 4.0], soc_max=[0.0, 4.0], charge_max=[0.0, 4.0],
                           discharge_max=[0.0, 4.0], export_price=[[5.0], [50.0]],
                           battery_export=[True, False], links=[(0, 1)], link_capacity=10.0,
                           link_efficiency=1.0)
    plan = _solve(problem)
    assert plan.grid_export_kw[1, 0] <= 0.5 + 1e-6  # its own PV surplus, no more
    assert rule_breaches(problem, plan).forbidden_export_kwh == 0.0


def test_demand_guard_caps_grid_charging_at_the_contracted_demand():
    # Cheap now, dear later: the battery would fill at 10 kW from the grid; with a demand
    # charge the node may import only up to its contracted 4 kW (own deficit 1 kW).
    problem = make_problem(n_steps=2, load=[[[1.0, 1.0]]], import_price=[[10.0, 60.0]],
                           soc_max=10.0, charge_max=10.0, discharge_max=10.0, terminal=0.0,
                           demand_charge=1.0, peak_so_far=4.0)
    plan = _solve(problem)
    assert plan.grid_import_kw[0, 0] == pytest.approx(4.0)
    assert plan.objective_parts["demand_charge_jpy"] == pytest.approx(0.0, abs=1e-9)


def test_demand_charge_is_on_the_30_minute_average():
    # Two 15-minute steps of one period: 4 kW then 0 kW average 2 kW; with 1 kWh already
    # imported earlier in the period (period so far), the average is (1 + 1) / 0.5 = 4 kW.
    problem = make_problem(n_steps=2, step_s=900.0, load=[[[4.0, 0.0]]], demand_charge=100.0,
                           import_price=30.0)
    plan = _solve(problem)
    assert plan.objective_parts["demand_charge_jpy"] == pytest.approx(200.0)
    so_far = make_problem(n_steps=2, step_s=900.0, load=[[[4.0, 0.0]]], demand_charge=100.0,
                          import_price=30.0, period_so_far=1.0)
    assert _solve(so_far).objective_parts["demand_charge_jpy"] == pytest.approx(400.0)


def test_tier_blocks_price_each_kwh_at_its_tier():
    # 10 kWh left in the first tier (30 JPY), then +6.60: importing 20 kWh over the horizon
    # costs 10 x 30 + 10 x 36.60 = 666 JPY.
    tiers = ImportTiers(np.zeros(2, int), np.array([[[10.0, np.inf], [120.0, np.inf]]]),
                        np.array([[[0.0, 6.6], [0.0, 6.6]]]))
    problem = make_problem(n_steps=2, load=[[[10.0, 10.0]]], import_price=30.0, tiers=tiers)
    plan = _solve(problem)
    assert plan.objective_parts["import_cost_jpy"] == pytest.approx(666.0)


def test_fallback_keeps_the_rules_where_the_optimum_is_tempted():
    problem = make_problem(n_nodes=2, n_steps=2, load=[[[2.0, 2.0]], [[3.0, 3.0]]],
                           stored=[3.0, 0.0], soc_max=[3.0, 0.0], charge_max=[3.0, 0.0],
                           discharge_max=[3.0, 0.0], grey=[3.0, 0.0],
                           import_price=[[20.0, 20.0], [40.0, 40.0]], links=[(0, 1)],
                           link_capacity=10.0, link_efficiency=1.0)
    plan = fallback_plan(problem)
    assert_valid(problem, plan)
    assert np.abs(plan.link_flow_kw).max() == pytest.approx(0.0, abs=1e-9)  # its energy is grey
