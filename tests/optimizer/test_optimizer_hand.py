"""Hand-checked dispatch cases: every expected number below is worked out in the comments."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.contrib.solver.common.factory import SolverFactory

from optimizer import Dispatcher, Penalties, PlanStatus, binaries_needed, reserve_profile_kwh
from optimizer.reference import build_reference_model, solve_reference
from tests.optimizer.kit import assert_valid, make_problem


def test_one_home_two_steps_stores_noon_surplus_for_the_evening():
    # Step 0 (1 h): PV 3, load 1 -> 2 kWh surplus. Charging 2 kWh at eta 0.9 stores 1.8 kWh,
    # which gives back 1.8 * 0.9 = 1.62 kWh in step 1 (worth 40 JPY/kWh, wear 1 JPY/kWh)
    # instead of 10 JPY/kWh export.  Step 1: load 2 -> import 2 - 1.62 = 0.38 kWh at 40.
    # Objective = 0.38 * 40 + 1.62 * 1 = 16.82 JPY.
    problem = make_problem(pv=[3.0, 0.0], load=[[[1.0, 2.0]]], import_price=[30.0, 40.0],
                           export_price=10.0, soc_max=2.0, charge_max=2.0, discharge_max=2.0,
                           eta_c=0.9, eta_d=0.9, wear=1.0)
    plan = Dispatcher().solve(problem)
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.used_binaries is False
    assert plan.objective_jpy == pytest.approx(16.82, abs=1e-6)
    assert plan.battery_charge_kw[0] == pytest.approx([2.0, 0.0], abs=1e-6)
    assert plan.stored_kwh[0] == pytest.approx([1.8, 0.0], abs=1e-6)
    assert plan.battery_kw[0, 1] == pytest.approx(1.62, abs=1e-6)
    assert plan.grid_kw[0] == pytest.approx([0.0, 0.38], abs=1e-6)
    assert plan.objective_parts["import_cost_jpy"] == pytest.approx(15.2, abs=1e-6)
    assert plan.objective_parts["battery_wear_jpy"] == pytest.approx(1.62, abs=1e-6)
    assert_valid(problem, plan)


@pytest.mark.parametrize("reverse", [False, True])
def test_two_homes_surplus_covers_neighbour_over_lossy_link(reverse):
    # Home 0: PV 5, load 1 -> 4 kW surplus.  Home 1: load 3.  Sending x over the link
    # (eta 0.9) saves 0.9 * 30 = 27 JPY/kWh > 10 JPY/kWh export, so home 0 sends
    # 3 / 0.9 = 3.3333 kW and exports the remaining 0.6667 kW: objective -6.6667 JPY.
    link = (1, 0) if reverse else (0, 1)
    problem = make_problem(n_nodes=2, n_steps=1, pv=[[5.0], [0.0]], load=[[[1.0]], [[3.0]]],
                           links=[link], link_capacity=10.0, link_efficiency=0.9)
    plan = Dispatcher().solve(problem)
    assert plan.objective_jpy == pytest.approx(-20.0 / 3.0, abs=1e-6)
    sign = -1.0 if reverse else 1.0  # flow_kw is positive from from_node to to_node
    assert plan.link_flow_kw[0, 0] == pytest.approx(sign * 10.0 / 3.0, abs=1e-6)
    assert plan.link_loss_kw[0, 0] == pytest.approx(1.0 / 3.0, abs=1e-6)
    assert plan.grid_kw[:, 0] == pytest.approx([-2.0 / 3.0, 0.0], abs=1e-6)
    assert_valid(problem, plan)


def test_link_capacity_limits_the_exchange():
    # Capacity 2 kW: home 1 receives 1.8 kW and imports 1.2 kW at 30 (36 JPY); home 0
    # exports 4 - 2 = 2 kW at 10 (-20 JPY).  Objective 16 JPY.
    problem = make_problem(n_nodes=2, n_steps=1, pv=[[5.0], [0.0]], load=[[[1.0]], [[3.0]]],
                           links=[(0, 1)], link_capacity=2.0, link_efficiency=0.9)
    plan = Dispatcher().solve(problem)
    assert plan.objective_jpy == pytest.approx(16.0, abs=1e-6)
    assert plan.link_flow_kw[0, 0] == pytest.approx(2.0, abs=1e-6)
    assert_valid(problem, plan)


def _islanded_home(stored_kwh: float):
    # Islanded for one hour, no PV, only the battery (eta 1); tiers 0.5 / 0.4 / 0.6 kW.
    return make_problem(n_tiers=3, n_steps=1, load=[[[0.5], [0.4], [0.6]]],
                        voll=[3000.0, 400.0, 100.0], available=False, stored=stored_kwh,
                        soc_max=5.0, charge_max=5.0, discharge_max=5.0)


@pytest.mark.parametrize("solver", ["dispatcher", "fallback"])
def test_islanding_sheds_highest_tier_first(solver):
    # 1.0 kWh for 1.5 kWh of load: shed 0.5 kW of tier 2 only.
    problem = _islanded_home(1.0)
    plan = Dispatcher().solve(problem) if solver == "dispatcher" else _fallback(problem)
    assert plan.load_shed_kw[0, :, 0] == pytest.approx([0.0, 0.0, 0.5], abs=1e-6)
    assert plan.grid_import_kw[0, 0] == 0.0 and plan.grid_export_kw[0, 0] == 0.0
    assert not [v for v in plan.violations if v.kind == "critical_load_shed"]
    assert_valid(problem, plan)


@pytest.mark.parametrize("solver", ["dispatcher", "fallback"])
def test_islanding_sheds_critical_last_and_reports_it(solver):
    # 0.3 kWh for 1.5 kWh: tiers 2 and 1 fully shed, critical 0.2 kW shed; 100 * 0.6 +
    # 400 * 0.4 + 3000 * 0.2 = 820 JPY of lost load.
    problem = _islanded_home(0.3)
    plan = Dispatcher().solve(problem) if solver == "dispatcher" else _fallback(problem)
    assert plan.load_shed_kw[0, :, 0] == pytest.approx([0.2, 0.4, 0.6], abs=1e-6)
    assert plan.objective_parts["lost_load_jpy"] == pytest.approx(820.0, abs=1e-6)
    kinds = [v.kind for v in plan.violations]
    assert kinds == ["critical_load_shed"]
    assert_valid(problem, plan)


def _fallback(problem):
    from optimizer import fallback_plan

    plan = fallback_plan(problem)
    assert plan.status is PlanStatus.FALLBACK
    return plan


def _arbitrage_problem():
    # Step 1 pays a feed-in premium above the import price (50 > 30): an LP would import
    # and export at the same time.  Home: load 1, no PV, limits 5 kW.
    return make_problem(n_steps=2, pv=0.0, load=1.0, import_price=30.0,
                        export_price=[[10.0, 50.0]], import_limit=5.0, export_limit=5.0)


def test_binaries_only_where_they_change_the_answer():
    assert not binaries_needed(make_problem()).grid.any()
    needed = binaries_needed(_arbitrage_problem())
    assert needed.grid.tolist() == [[False, True]]
    negative = make_problem(import_price=[[-5.0, 30.0]], soc_max=1.0, charge_max=1.0,
                            discharge_max=1.0, links=[], n_nodes=1)
    assert binaries_needed(negative).battery.all()


def test_import_export_binaries_are_needed_and_used():
    problem = _arbitrage_problem()
    # The LP relaxation of the exact model (imp + exp <= 5, imp - exp = 1 in step 1) imports
    # 3 kW and exports 2 kW at a profit: 30 + 3 * 30 - 2 * 50 = 20 JPY in all.
    relaxed = build_reference_model(problem, all_binary=True)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(relaxed)
    SolverFactory("highs").solve(relaxed)
    lp_objective = pyo.value(relaxed.obj)
    # step 0: import 1 at 30 = 30; step 1 (exact): no PV, so nothing can be exported: 30.
    plan = Dispatcher().solve(problem)
    assert plan.used_binaries is True
    assert plan.objective_jpy == pytest.approx(60.0, abs=1e-6)
    assert lp_objective == pytest.approx(20.0, abs=1e-6)  # the LP form would be wrong
    assert_valid(problem, plan)
    assert plan.objective_jpy == pytest.approx(solve_reference(problem).objective_jpy, abs=1e-6)


def test_negative_import_price_gets_battery_binaries():
    # Paid 20 JPY/kWh to import: without exclusivity the battery would charge and discharge
    # at once to burn energy.  With binaries it can only fill up (2 kWh at eta 0.8).
    problem = make_problem(n_steps=1, load=1.0, import_price=-20.0, export_price=-30.0,
                           soc_max=2.0, charge_max=3.0, discharge_max=3.0, eta_c=0.8, eta_d=0.8,
                           import_limit=10.0)
    plan = Dispatcher().solve(problem)
    assert plan.used_binaries is True
    assert_valid(problem, plan)
    assert plan.battery_discharge_kw[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert plan.objective_jpy == pytest.approx(solve_reference(problem).objective_jpy, abs=1e-6)


def test_reserve_profile_is_raised_ahead_of_a_warned_outage():
    # Critical 1 kW at one node, 1-hour steps, 2 h base reserve; outage in steps 3 and 4.
    warned = np.array([False, False, False, True, True, False])
    reserve = reserve_profile_kwh(np.ones((1, 6)), 3600.0, 2.0, warned)
    assert reserve.tolist() == [2.0, 2.0, 2.0, 0.0, 0.0, 2.0]
    long = reserve_profile_kwh(np.ones((1, 6)), 3600.0, 0.5, warned)
    assert long.tolist() == [2.0, 2.0, 2.0, 0.0, 0.0, 0.5]


def test_reserve_ahead_of_warned_outage_fills_the_battery():
    # Steps 0-2 connected, 3-4 islanded (warned), critical load 1 kW, no PV.  The value of
    # lost load (20 JPY/kWh) is below the cost of storing grid energy (30), so only the
    # reserve (60 JPY/kWh short per step) makes the plan charge 2 kWh before the outage.
    warned = np.array([False, False, False, True, True])
    kwargs = dict(n_steps=5, load=1.0, voll=[20.0], available=~warned, soc_max=5.0,
                  charge_max=5.0, discharge_max=5.0)
    reserve = reserve_profile_kwh(np.ones((1, 5)), 3600.0, 0.0, warned)
    with_reserve = Dispatcher().solve(make_problem(reserve=reserve, **kwargs))
    without = Dispatcher().solve(make_problem(reserve=0.0, **kwargs))
    assert with_reserve.stored_kwh[0, 2] == pytest.approx(2.0, abs=1e-6)
    assert with_reserve.load_shed_kw[0, 0, 3:] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert without.stored_kwh[0, 2] == pytest.approx(0.0, abs=1e-6)
    assert without.load_shed_kw[0, 0, 3:] == pytest.approx([1.0, 1.0], abs=1e-6)


@pytest.mark.parametrize("stored, kept, kind", [(12.0, 10.0, "initial_stored_clamped"),
                                                (-1.0, 0.0, "initial_stored_clamped")])
def test_measured_state_outside_capacity_is_clamped_with_a_note(stored, kept, kind):
    problem = make_problem(n_steps=1, load=0.0, stored=stored, soc_max=10.0)
    plan = Dispatcher().solve(problem)
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.stored_kwh[0, 0] == pytest.approx(kept, abs=1e-6)
    assert plan.violations[0].kind == kind and plan.violations[0].node == "n0"


def test_state_below_soc_min_still_plans_and_reports_the_dip():
    # Islanded, 1 kWh stored with a 2 kWh floor: the plan may not charge (no source) and
    # reports the dip; the deepest dip (1 kWh) costs 500 JPY once.
    problem = make_problem(n_steps=2, load=0.0, stored=1.0, soc_min=2.0, soc_max=10.0,
                           charge_max=5.0, discharge_max=5.0, available=False,
                           penalties=Penalties(soc_below_min_jpy_per_kwh=500.0))
    plan = Dispatcher().solve(problem)
    assert plan.status is PlanStatus.OPTIMAL
    assert plan.objective_parts["soc_penalty_jpy"] == pytest.approx(500.0, abs=1e-6)
    assert [v.kind for v in plan.violations] == ["soc_below_min", "soc_below_min"]
    assert_valid(problem, plan)


def test_battery_export_ban_on_fit_meter():
    # The battery holds 4 kWh with no terminal value, so exporting it earns 25 JPY/kWh;
    # a FIT meter forbids battery energy flowing to the grid.
    common = dict(n_steps=1, load=0.0, stored=4.0, soc_max=4.0, charge_max=4.0,
                  discharge_max=4.0, export_price=25.0)
    allowed = Dispatcher().solve(make_problem(battery_export=True, **common))
    banned = Dispatcher().solve(make_problem(battery_export=False, **common))
    assert allowed.grid_export_kw[0, 0] == pytest.approx(4.0, abs=1e-6)
    assert banned.grid_export_kw[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_demand_charge_flattens_the_peak():
    # Load 4 then 0 kW; import above the 2 kW already billed costs 100 JPY/kW.  The battery
    # (2 kWh, worth 10 JPY/kWh at the horizon end) discharges 2 kW in step 0, so the import
    # peak stays at 2 kW and no demand charge is added.
    problem = make_problem(n_steps=2, load=[[[4.0, 0.0]]], stored=2.0, soc_max=2.0,
                           charge_max=4.0, discharge_max=4.0, demand_charge=100.0,
                           peak_so_far=2.0, terminal=10.0)
    plan = Dispatcher().solve(problem)
    assert plan.grid_import_kw[0].max() == pytest.approx(2.0, abs=1e-6)
    assert plan.objective_parts["demand_charge_jpy"] == pytest.approx(0.0, abs=1e-6)
    assert_valid(problem, plan)
