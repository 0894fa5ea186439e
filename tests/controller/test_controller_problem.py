"""Problem building on the Misono site, checked by hand against configs/misono.yaml."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from gridctl.controller import (
    opening_billing,
    ControllerState,
    Mode,
    NodeReading,
    OutageWindow,
    ReserveRequest,
    build_problem,
    initial_state,
    plan_start_utc,
    prepare_problem,
    site_index,
)
from tests.controller.sitekit import flat_forecast, snapshot

UTC = dt.timezone.utc


def _problem(site, now, state=None, readings=None, unhealthy=(), pv_kw=0.0, load_kw=1.0,
             margin_pct=0.0):
    """The problem of ``site`` with the forecast as given (``margin_pct``: the peak margin)."""
    control = site.control.model_copy(update={"peak_margin_pct": margin_pct})
    site = site.model_copy(update={"control": control})
    state = state or initial_state(now)
    snap = snapshot(site, now, readings, unhealthy)
    return prepare_problem(site, state, snap, flat_forecast(site, now, pv_kw, load_kw), now)


def test_members_with_a_demand_charge_are_planned_with_a_peak_margin(misono, now):
    readings = {"mall": NodeReading(load_kw=100.0)}
    problem, _ = _problem(misono, now, readings=readings, load_kw=100.0, margin_pct=10.0)
    total = problem.load_kw.sum(axis=1)
    assert total[6, 0] == pytest.approx(100.0)  # the step under way is measured, no margin
    assert total[6, 1:] == pytest.approx(110.0)  # the mall pays a demand charge
    assert total[5, 1:] == pytest.approx(110.0)  # so does the store
    assert total[0, 1:] == pytest.approx(100.0)  # homes do not


def test_shapes_and_tier_axis(misono, now):
    problem, _ = _problem(misono, now)
    assert problem.node_ids == ("home-1", "home-2", "home-3", "home-4", "home-5", "store", "mall")
    # 24 h of 15-minute steps; critical + 3 sheddable tiers.
    assert (problem.n_nodes, problem.n_tiers, problem.n_steps) == (7, 4, 96)
    assert problem.step_s == 900.0
    # shed_order is 3 (80), 2 (150), 1 (400): reversed after the critical 5000.
    assert problem.value_of_lost_load_jpy_per_kwh.tolist() == [5000.0, 400.0, 150.0, 80.0]
    assert site_index(misono).tier_numbers == (0, 1, 2, 3)


def test_load_split_by_critical_share_and_shed_tier(misono, now):
    problem, _ = _problem(misono, now, load_kw=2.0)
    load = problem.load_kw[:, :, 5]
    # home-1: 15 % critical, rest in tier 1; home-3: tier 2; store: 30 % critical, tier 3;
    # mall: 10 % critical, tier 3.
    assert load[0].tolist() == pytest.approx([0.3, 1.7, 0.0, 0.0])
    assert load[2].tolist() == pytest.approx([0.3, 0.0, 1.7, 0.0])
    assert load[5].tolist() == pytest.approx([0.6, 0.0, 0.0, 1.4])
    assert load[6].tolist() == pytest.approx([0.2, 0.0, 0.0, 1.8])
    np.testing.assert_allclose(problem.load_kw.sum(axis=1), 2.0)


def test_prices_per_step_from_tariffs(misono, now):
    problem, _ = _problem(misono, now)
    imp = problem.grid.import_price_jpy_per_kwh
    # Juryo B first block 29.80 + surcharge 3.98 + August 2026 fuel adjustment -1.70.
    assert imp[0, 0] == pytest.approx(32.08)
    np.testing.assert_allclose(imp[:5], 32.08)  # no time of use for homes
    # Business TOU on a Monday 12:00 JST: 34.20 + 3.98 - 1.50 (no monthly override).
    assert imp[5, 0] == pytest.approx(36.68)
    # Step starting 21:00 JST = 12:00 UTC is off-peak: 27.10 + 3.98 - 1.50.
    step_21 = int((dt.datetime(2026, 8, 3, 12, 0, tzinfo=UTC) - plan_start_utc(misono, now))
                  .total_seconds() // 900)
    assert imp[6, step_21] == pytest.approx(29.58)
    assert imp[6, step_21 - 1] == pytest.approx(36.68)
    exp = problem.grid.export_price_jpy_per_kwh
    assert exp[:, 0].tolist() == pytest.approx([15.0, 15.0, 15.0, 8.5, 15.0, 8.5, 8.5])


def test_month_to_date_import_picks_the_block_price(misono, now):
    billing = opening_billing(misono, now, {"home-1": 150.0, "home-2": 301.0}, {})
    problem, _ = _problem(misono, now, state=initial_state(now, billing=billing))
    imp = problem.grid.import_price_jpy_per_kwh[:, 0]
    assert imp[0] == pytest.approx(36.40 + 3.98 - 1.70)
    assert imp[1] == pytest.approx(40.49 + 3.98 - 1.70)
    assert imp[2] == pytest.approx(32.08)
    # The tiers still ahead this month are blocks: home-1 has 150 kWh left in tier 2, then
    # pays 4.09 more per kWh; home-3 (nothing imported yet) 120 kWh, then +6.60, then +10.69.
    tiers = problem.grid.tiers
    assert tiers.width_kwh[0, 0, 0] == 150.0 and tiers.increment_jpy_per_kwh[0, 0, -1] == pytest.approx(4.09)
    assert tiers.width_kwh[2, 0].tolist() == [120.0, 180.0, np.inf]
    assert tiers.increment_jpy_per_kwh[2, 0].tolist() == pytest.approx([0.0, 6.60, 10.69])
    assert np.isinf(tiers.width_kwh[1, 0, -1]) and tiers.increment_jpy_per_kwh[1, 0, -1] == 0.0


def test_battery_data_from_ratings_and_readings(misono, now):
    readings = {"home-1": NodeReading(stored_kwh=5.0), "home-2": NodeReading(soc_pct=50.0),
                "home-3": NodeReading(stored_kwh=2.0, soc_pct=99.0)}
    problem, notes = _problem(misono, now, readings=readings)
    bat = problem.battery
    assert bat.stored_kwh[:3].tolist() == pytest.approx([5.0, 6.4, 2.0])  # stored beats SoC
    # Unmeasured nodes start at soc_min, with a note; home-5 has no battery at all.
    assert bat.stored_kwh[3] == pytest.approx(0.56)
    assert any("home-4" in n and "not measured" in n for n in notes)
    assert bat.soc_min_kwh.tolist() == pytest.approx([0.98, 1.28, 0.7, 0.56, 0.0, 3.0, 25.0])
    assert bat.soc_max_kwh.tolist() == pytest.approx([9.31, 12.16, 6.65, 5.32, 0.0, 28.5, 237.5])
    assert bat.charge_max_kw.tolist() == [4.0, 5.0, 3.0, 3.0, 0.0, 15.0, 100.0]
    assert not bat.grid_export_allowed.any()
    # Terminal value: 0.95 x cheapest import of the horizon - wear 2.0.
    assert bat.terminal_value_jpy_per_kwh[0] == pytest.approx(0.95 * 32.08 - 2.0)
    assert bat.terminal_value_jpy_per_kwh[5] == pytest.approx(0.95 * 29.58 - 2.0)
    assert bat.terminal_value_jpy_per_kwh[4] == 0.0


def test_grid_limits_and_links(misono, now):
    problem, _ = _problem(misono, now)
    assert problem.grid.import_limit_kw.tolist() == [6.0, 6.0, 5.0, 5.0, 5.0, 40.0, 300.0]
    assert problem.grid.export_limit_kw.tolist() == [4.5, 4.4, 4.8, 4.6, 4.5, 20.0, 120.0]
    assert problem.grid.available.all()
    links = problem.links
    assert links.from_node.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert links.to_node.tolist() == [1, 2, 3, 4, 5, 6, 0]
    assert links.capacity_kw.tolist() == [10, 10, 10, 10, 10, 30, 10]
    np.testing.assert_allclose(links.efficiency, 0.97)
    assert problem.options.time_limit_s == 5 and problem.options.mip_rel_gap == 0.005


def test_reserve_is_critical_load_times_hours(misono, now):
    problem, _ = _problem(misono, now, load_kw=1.0)
    critical_kw = 5 * 0.15 + 0.30 + 0.10  # homes, store, mall
    np.testing.assert_allclose(problem.reserve_kwh, 12 * critical_kw)


def test_reserve_request_raises_until_it_lapses(misono, now):
    until = plan_start_utc(misono, now) + dt.timedelta(hours=2)
    state = replace(initial_state(now), reserve_request=ReserveRequest(24.0, until))
    problem, _ = _problem(misono, now, state=state)
    critical_kw = 1.15
    np.testing.assert_allclose(problem.reserve_kwh[:8], 24 * critical_kw)
    np.testing.assert_allclose(problem.reserve_kwh[8:], 12 * critical_kw)


def test_warned_outage_window(misono, now):
    start = plan_start_utc(misono, now)
    window = OutageWindow(start + dt.timedelta(hours=2), start + dt.timedelta(hours=3), "works")
    state = replace(initial_state(now), outage_windows=(window,))
    problem, notes = _problem(misono, now, state=state, load_kw=1.0)
    available = problem.grid.available
    assert available[:8].all() and not available[8:12].any() and available[12:].all()
    reserve = problem.reserve_kwh
    # Ahead of the window: 72 h x 1.15 kW = 82.8 kWh (below the 299.44 kWh of storage).
    np.testing.assert_allclose(reserve[:8], 72 * 1.15)
    assert not reserve[8:12].any()
    np.testing.assert_allclose(reserve[12:], 12 * 1.15)
    # A heavier block is capped at its storage, with a note.
    heavy, notes = _problem(misono, now, state=state, load_kw=10.0)
    np.testing.assert_allclose(heavy.reserve_kwh[:8], heavy.battery.soc_max_kwh.sum())
    assert any("capped" in n for n in notes)


def test_unplanned_islanding_plans_without_grid(misono, now):
    state = ControllerState(Mode.ISLANDED, now)
    problem, _ = _problem(misono, now, state=state)
    assert not problem.grid.available.any()
    assert not problem.reserve_kwh.any()


def test_islanded_in_a_warned_window_expects_the_grid_back(misono, now):
    start = plan_start_utc(misono, now)
    window = OutageWindow(start - dt.timedelta(hours=1), start + dt.timedelta(hours=1))
    state = ControllerState(Mode.ISLANDED, now, outage_windows=(window,))
    problem, _ = _problem(misono, now, state=state)
    # Grid back after the window plus the 300 s reconnect delay: from step 5 on.
    assert not problem.grid.available[:5].any() and problem.grid.available[5:].all()


def test_reconnecting_waits_for_the_delay(misono, now):
    state = ControllerState(Mode.RECONNECTING, now, grid_healthy_since_utc=now)
    problem, _ = _problem(misono, now, state=state)
    # 12:07 + 300 s = 12:12, so the steps at 12:00 is out, 12:15 on is back.
    assert problem.grid.available.tolist()[:3] == [False, True, True]


def test_unhealthy_devices_leave_the_plan(misono, now):
    problem, notes = _problem(misono, now, unhealthy=("home-2-battery", "store-dgr", "mall-pv"),
                              pv_kw=3.0)
    assert problem.battery.charge_max_kw[1] == 0 and problem.battery.discharge_max_kw[1] == 0
    # store-dgr ends the links home-5/store and store/mall.
    assert problem.links.capacity_kw.tolist() == [10, 10, 10, 10, 0, 0, 10]
    assert not problem.pv_available_kw[6].any()
    assert sum("unhealthy" in n for n in notes) == 3  # one battery, two links
    assert any(n.startswith("node mall: PV inverters at 0 of 120 kW") for n in notes)


def test_step_zero_uses_the_readings(misono, now):
    readings = {"home-1": NodeReading(pv_kw=2.5, load_kw=0.7), "home-2": NodeReading(pv_kw=99.0)}
    problem, _ = _problem(misono, now, readings=readings, pv_kw=1.0, load_kw=1.0)
    assert problem.pv_available_kw[0, 0] == 2.5 and problem.pv_available_kw[0, 1] == 1.0
    assert problem.load_kw[0, :, 0].sum() == pytest.approx(0.7)
    assert problem.pv_available_kw[1, 0] == 4.4  # a reading above the rating is capped


def test_forecast_must_cover_the_plan_start(misono, now):
    forecast = flat_forecast(misono, now + dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="forecast.start_utc"):
        build_problem(misono, initial_state(now), snapshot(misono, now), forecast, now)
    # An earlier forecast is cut to start at the plan start.
    early = flat_forecast(misono, now - dt.timedelta(minutes=30))
    problem = build_problem(misono, initial_state(now), snapshot(misono, now), early, now)
    assert problem.n_steps == 94
