"""decide(): follow a fresh plan, fall back without one; the rule-based fallback's behaviour."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from gridctl.controller import (
    plan_deadline_s,
    ControllerState,
    Mode,
    NodeReading,
    SetpointKind,
    accept_plan,
    decide,
    fallback_problem,
    initial_state,
    plan_start_utc,
    plan_step_index,
    replan_due,
)
from optimizer import PlanStatus
from tests.controller.sitekit import plan_with, snapshot


def _state_with_plan(site, now, plan, made_at=None, mode=Mode.GRID_CONNECTED):
    made_at = made_at or now
    return accept_plan(ControllerState(mode, made_at), plan, plan_start_utc(site, made_at),
                       made_at)


def test_follows_the_step_under_way(misono, now):
    discharge = np.zeros((7, 4))
    discharge[0] = [0.5, 1.5, 2.5, 3.5]
    plan = plan_with(misono, battery_discharge_kw=discharge)
    later = now + dt.timedelta(minutes=25)  # 12:32 JST: step 2 of a plan starting 12:00
    state = accept_plan(initial_state(now), plan, plan_start_utc(misono, now),
                        later - dt.timedelta(minutes=1))
    assert plan_step_index(state, later) == 2
    d = decide(misono, state, snapshot(misono, later), later)
    assert d.plan_step == 2 and not d.used_fallback
    assert d.setpoints.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == 2.5


@pytest.mark.parametrize("why, shift_min, made_shift_min", [
    ("no plan", 0, None),
    ("does not cover now", 60, 0),     # four 15-minute steps, one hour later
    ("stale", 14, -700),               # made 700 min earlier than its start: too old
])
def test_falls_back_without_a_usable_plan(misono, now, why, shift_min, made_shift_min):
    if made_shift_min is None:
        state = initial_state(now)
    else:
        state = _state_with_plan(misono, now, plan_with(misono))
        made = now + dt.timedelta(minutes=made_shift_min)
        state = accept_plan(state, state.plan, state.plan_start_utc, made)
    at = now + dt.timedelta(minutes=shift_min)
    d = decide(misono, state, snapshot(misono, at), at)
    assert d.used_fallback and d.plan_step is None
    assert why in d.notes[0]


def test_a_plan_with_grid_flows_is_not_followed_when_islanded(misono, now):
    plan = plan_with(misono, grid_import_kw=np.full((7, 4), 1.0))
    state = _state_with_plan(misono, now, plan, mode=Mode.ISLANDED)
    d = decide(misono, state, snapshot(misono, now), now)
    assert d.used_fallback and "uses the grid" in d.notes[0]
    assert d.setpoints.grid_tie_open


def test_following_a_fallback_plan_is_reported(misono, now):
    plan = plan_with(misono, status=PlanStatus.FALLBACK)
    d = decide(misono, _state_with_plan(misono, now, plan), snapshot(misono, now), now)
    assert d.used_fallback and d.plan_step == 0


def test_replan_due(misono, now):
    assert replan_due(misono, initial_state(now), now)
    state = _state_with_plan(misono, now, plan_with(misono, n_steps=96))
    assert not replan_due(misono, state, now + dt.timedelta(seconds=299))
    assert replan_due(misono, state, now + dt.timedelta(seconds=300))  # replan_period_s
    short = _state_with_plan(misono, now, plan_with(misono, n_steps=1))
    assert not replan_due(misono, short, now)  # running out, but made just now
    assert replan_due(misono, short, now + dt.timedelta(seconds=30))  # running out, 30 s on
    asked = replace(state, plan_requested_utc=now + dt.timedelta(seconds=300))
    assert not replan_due(misono, asked, now + dt.timedelta(seconds=310))  # a solve is out
    assert replan_due(misono, asked, now + dt.timedelta(seconds=300 + plan_deadline_s(misono)))
    assert replan_due(misono, replace(state, replan_wanted=True), now)


def _islanded_decision(site, now, readings, stored_at_min=True):
    full = {}
    for node in site.nodes:
        r = readings.get(node.id, NodeReading(pv_kw=0.0, load_kw=0.0))
        floor = sum(b.rating.capacity_kwh * b.rating.soc_min_pct / 100 for b in node.batteries)
        capacity = sum(b.rating.capacity_kwh for b in node.batteries)
        stored = floor if stored_at_min else 0.9 * capacity
        full[node.id] = NodeReading(pv_kw=r.pv_kw, load_kw=r.load_kw, stored_kwh=stored)
    state = initial_state(now, Mode.ISLANDED)
    return decide(site, state, snapshot(site, now, full), now)


def test_fallback_self_consumption_first(misono, now):
    d = _islanded_decision(misono, now, {"home-1": NodeReading(pv_kw=3.0, load_kw=1.0)},
                           stored_at_min=False)
    # home-1 keeps its own load on PV; the rest charges its battery; nothing to shed.
    assert d.setpoints.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == pytest.approx(-2.0)
    assert not d.setpoints.shed_tiers and d.setpoints.grid_tie_open and d.used_fallback


def test_fallback_shares_surplus_with_a_neighbour_in_deficit(misono, now):
    # home-5 has no battery and needs 2 kW; home-4 has 3 kW of surplus PV next door.
    readings = {"home-4": NodeReading(pv_kw=4.0, load_kw=1.0),
                "home-5": NodeReading(pv_kw=0.0, load_kw=2.0)}
    d = _islanded_decision(misono, now, readings)
    sp = d.setpoints
    sent = -sp.value_kw("home-4-dgr", SetpointKind.LEG_KW, "to-home-5")
    assert sent == pytest.approx(2.0 / 0.97)
    assert sp.value_kw("home-5-dgr", SetpointKind.LEG_KW, "to-home-4") == pytest.approx(2.0)
    assert "home-5" not in sp.shed_tiers
    # What is left charges home-4's own battery.
    assert sp.value_kw("home-4-battery", SetpointKind.BATTERY_KW) == pytest.approx(-(3.0 - sent))


def test_fallback_sheds_in_order_when_islanded_and_empty(misono, now):
    readings = {n.id: NodeReading(pv_kw=0.0, load_kw=2.0) for n in misono.nodes}
    d = _islanded_decision(misono, now, readings)
    shed = dict(d.setpoints.shed_tiers)
    # Empty batteries, no PV, no grid: every node sheds its sheddable tier, never critical.
    assert shed == {"home-1": (1,), "home-2": (1,), "home-3": (2,), "home-4": (2,),
                    "home-5": (2,), "store": (3,), "mall": (3,)}
    assert all(0 not in tiers for tiers in shed.values())


@pytest.mark.parametrize("stored_share, discharges", [(0.3, False), (0.9, True)])
def test_fallback_keeps_the_reserve_when_grid_connected(misono, now, stored_share, discharges):
    load_kw = {"store": 30.0, "mall": 100.0}
    readings = {n.id: NodeReading(pv_kw=0.0, load_kw=load_kw.get(n.id, 4.0),
                                  stored_kwh=stored_share * sum(b.rating.capacity_kwh
                                                                for b in n.batteries))
                for n in misono.nodes}
    d = decide(misono, initial_state(now), snapshot(misono, now, readings), now)
    # Reserve: 12 h x (5 x 0.6 + 9 + 10) kW critical = 264 kWh, 88 % of the block's 299.44 kWh,
    # shared by capacity.  At 30 % stored every battery is below its share: import and keep
    # the store; at 90 % each is above it and helps.
    for node in misono.nodes:
        for b in node.batteries:
            value = d.setpoints.value_kw(b.id, SetpointKind.BATTERY_KW)
            assert (value > 0) is discharges, b.id
    assert not d.setpoints.shed_tiers and not d.setpoints.grid_tie_open


def test_fallback_with_missing_readings_leaves_the_battery_idle(misono, now):
    readings = {"home-1": NodeReading(pv_kw=None, load_kw=3.0, stored_kwh=8.0)}
    d = decide(misono, initial_state(now, Mode.ISLANDED), snapshot(misono, now, readings), now)
    assert d.setpoints.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == 0.0
    assert any("home-1" in n and "idle" in n for n in d.notes)


def test_fallback_problem_is_one_measured_step(misono, now):
    readings = {"home-2": NodeReading(pv_kw=1.2, load_kw=0.4, stored_kwh=6.0)}
    problem, unknown, _ = fallback_problem(misono, initial_state(now), snapshot(
        misono, now, readings), now)
    assert problem.n_steps == 1
    assert problem.pv_available_kw[1, 0] == 1.2 and problem.load_kw[1, :, 0].sum() == 0.4
    assert unknown.tolist() == [True, False, True, True, True, True, True]
    # A missing load counts as the yearly mean: 5200 kWh / 8760 h at home-1.
    assert problem.load_kw[0, :, 0].sum() == pytest.approx(5200 / 8760)
    assert problem.grid.available.tolist() == [True]


def test_non_finite_readings_count_as_missing(misono, now):
    readings = {"home-1": NodeReading(pv_kw=float("nan"), load_kw=float("inf"), stored_kwh=5),
                "home-2": NodeReading(pv_kw=1.0, load_kw=2.0, stored_kwh=float("nan"))}
    assert readings["home-1"].pv_kw is None and readings["home-1"].load_kw is None
    assert readings["home-1"].stored_kwh == 5.0
    d = decide(misono, initial_state(now, Mode.ISLANDED), snapshot(misono, now, readings), now)
    assert d.setpoints.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == 0.0
    assert d.used_fallback


def test_fallback_works_without_a_valid_tariff(misono):
    from gridctl.tariffs import TariffLookupError
    from tests.controller.sitekit import flat_forecast

    before_tariffs = dt.datetime(2024, 8, 1, 3, 0, tzinfo=dt.timezone.utc)
    readings = {n.id: NodeReading(pv_kw=0.0, load_kw=0.0) for n in misono.nodes}
    readings["home-1"] = NodeReading(pv_kw=0.0, load_kw=1.0, stored_kwh=8.0)
    snap = snapshot(misono, before_tariffs, readings)
    d = decide(misono, initial_state(before_tariffs, Mode.ISLANDED), snap, before_tariffs)
    assert d.setpoints.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == pytest.approx(1.0)
    assert any("no prices" in n for n in d.notes)
    with pytest.raises(TariffLookupError, match="tepco-juryo-b"):
        from gridctl.controller import build_problem

        build_problem(misono, initial_state(before_tariffs), snap,
                      flat_forecast(misono, before_tariffs), before_tariffs)


def test_idle_setpoints_hold_everything_still(misono, now):
    from gridctl.controller import idle_setpoints

    sp = idle_setpoints(misono, initial_state(now), snapshot(misono, now), now)
    kinds = {s.kind for s in sp.items}
    assert kinds == {SetpointKind.BATTERY_KW, SetpointKind.PV_LIMIT_KW, SetpointKind.LEG_KW}
    for s in sp.items:
        if s.kind is SetpointKind.PV_LIMIT_KW:
            rating = next(d.rating.ac_kw for _, d in misono.all_devices() if d.id == s.device_id)
            assert s.value_kw == rating
        else:
            assert s.value_kw == 0.0
    assert not sp.shed_tiers and not sp.grid_tie_open
