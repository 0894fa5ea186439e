"""configs/misono.yaml -> history -> forecast -> problem -> optimizer -> plan -> setpoints."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from gridctl.controller import (
    ControllerState,
    Mode,
    NodeReading,
    OutageWindow,
    SetpointKind,
    accept_plan,
    build_problem,
    decide,
    initial_state,
    plan_start_utc,
)
from gridctl.forecast import forecast_for, new_history
from optimizer import Dispatcher, PlanStatus
from tests.controller.sitekit import snapshot

UTC = dt.timezone.utc


def _history(site, now):
    """A week of history: every node at half its inverter rating by day, its mean load always."""
    history = new_history(site)
    start = now - dt.timedelta(days=7)
    t = start
    while t < now:
        local_h = (t.hour + 9) % 24
        for node in site.nodes:
            rating = sum(i.rating.ac_kw for i in node.pv_inverters)
            pv = 0.5 * rating if 8 <= local_h < 16 else 0.0
            history.add(t, node.id, pv_kw=pv, load_kw=node.load.annual_kwh / 8760)
        t += dt.timedelta(minutes=15)
    return history


def _readings(site, stored_share, grid_available=True):
    out = {}
    for node in site.nodes:
        cap = sum(b.rating.capacity_kwh for b in node.batteries)
        out[node.id] = NodeReading(pv_kw=0.4 * sum(i.rating.ac_kw for i in node.pv_inverters),
                                   load_kw=node.load.annual_kwh / 8760,
                                   stored_kwh=stored_share * cap if cap else None,
                                   grid_available=grid_available, grid_voltage_v=202.0,
                                   grid_frequency_hz=50.0)
    return out


def _plan(site, state, snap, now, dispatcher):
    forecast = forecast_for(site, _history(site, now), now)
    problem = build_problem(site, state, snap, forecast, now)
    plan = dispatcher.solve(problem)
    return problem, plan


@pytest.fixture(scope="module")
def dispatcher():
    return Dispatcher()


def test_grid_connected_day(misono, now, dispatcher):
    snap = snapshot(misono, now, _readings(misono, 0.5))
    state = initial_state(now)
    problem, plan = _plan(misono, state, snap, now, dispatcher)
    assert plan.status in (PlanStatus.OPTIMAL, PlanStatus.TIME_LIMIT_FEASIBLE)
    assert plan.n_steps == 96 and problem.n_nodes == 7
    # FIT meters: no battery energy to the grid anywhere.
    assert np.all(plan.grid_export_kw <= plan.pv_used_kw + 1e-6)
    # Grid-connected with energy in store: nothing shed.
    assert plan.load_shed_kw.sum() == pytest.approx(0.0, abs=1e-6)
    state = accept_plan(state, plan, plan_start_utc(misono, now), now)
    decision = decide(misono, state, snap, now)
    assert not decision.used_fallback and decision.plan_step == 0
    assert not decision.setpoints.grid_tie_open and not decision.setpoints.shed_tiers


def test_unplanned_islanding_runs_without_grid_and_keeps_critical(misono, now, dispatcher):
    snap = snapshot(misono, now, _readings(misono, 0.5, grid_available=False))
    state = ControllerState(Mode.ISLANDED, now)
    _, plan = _plan(misono, state, snap, now, dispatcher)
    assert plan.status is not PlanStatus.FALLBACK
    assert plan.grid_import_kw.max() == pytest.approx(0.0, abs=1e-6)
    assert plan.grid_export_kw.max() == pytest.approx(0.0, abs=1e-6)
    # Half-full batteries and daylight PV carry the critical load through the day.
    assert plan.load_shed_kw[:, 0, :].sum() == pytest.approx(0.0, abs=1e-6)
    state = accept_plan(state, plan, plan_start_utc(misono, now), now)
    decision = decide(misono, state, snap, now)
    assert not decision.used_fallback and decision.setpoints.grid_tie_open


def test_batteries_fill_up_ahead_of_a_warned_outage(misono, now, dispatcher):
    snap = snapshot(misono, now, _readings(misono, 0.3))
    start = plan_start_utc(misono, now)
    window = OutageWindow(start + dt.timedelta(hours=8), start + dt.timedelta(hours=14))
    calm = initial_state(now)
    warned = replace(calm, outage_windows=(window,))
    _, plan_calm = _plan(misono, calm, snap, now, dispatcher)
    problem, plan_warned = _plan(misono, warned, snap, now, dispatcher)
    before = 8 * 4 - 1  # last step before the window
    assert not problem.grid.available[32:56].any()
    stored_calm = plan_calm.stored_kwh[:, before].sum()
    stored_warned = plan_warned.stored_kwh[:, before].sum()
    assert stored_warned > stored_calm + 10.0
    assert plan_warned.grid_import_kw[:, 32:56].max() == pytest.approx(0.0, abs=1e-6)


def test_setpoints_from_the_solved_plan_respect_ratings(misono, now, dispatcher):
    snap = snapshot(misono, now, _readings(misono, 0.6))
    state = initial_state(now)
    _, plan = _plan(misono, state, snap, now, dispatcher)
    state = accept_plan(state, plan, plan_start_utc(misono, now), now)
    for minutes in (0, 3, 7):
        at = now + dt.timedelta(minutes=minutes)
        d = decide(misono, state, snapshot(misono, at, _readings(misono, 0.6)), at)
        for s in d.setpoints.items:
            if s.kind is SetpointKind.BATTERY_KW:
                rating = next(b.rating for _, b in misono.all_devices() if b.id == s.device_id)
                assert -rating.max_charge_kw <= s.value_kw <= rating.max_discharge_kw
