"""Setpoints from a plan: signs, sharing, real-time correction, clamping to ratings, expiry."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridctl.config import BatteryDevice, PvInverterDevice, RouterDevice, load_site
from gridctl.controller import (
    ControllerState,
    Mode,
    NodeReading,
    SetpointKind,
    accept_plan,
    decide,
    initial_state,
    plan_start_utc,
    site_index,
)
from gridctl.controller.setpoints import correct_targets, make_setpoints, step_targets
from tests.controller.sitekit import MISONO, NOON_UTC, plan_with, snapshot

SITE = load_site(MISONO)


def _following(site, now, plan, readings=None, unhealthy=(), mode=Mode.GRID_CONNECTED):
    state = accept_plan(ControllerState(mode, now), plan, plan_start_utc(site, now), now)
    return decide(site, state, snapshot(site, now, readings, unhealthy), now)


def test_link_legs_carry_the_flow_with_losses(misono, now):
    flow = np.zeros((7, 4))
    flow[0] = 5.0    # home-1 -> home-2
    flow[6] = -4.0   # mall -> home-1 runs backwards: home-1 sends 4 kW to the mall
    d = _following(misono, now, plan_with(misono, link_flow_kw=flow))
    sp = d.setpoints
    assert sp.value_kw("home-1-dgr", SetpointKind.LEG_KW, "to-home-2") == -5.0
    assert sp.value_kw("home-2-dgr", SetpointKind.LEG_KW, "to-home-1") == pytest.approx(4.85)
    assert sp.value_kw("home-1-dgr", SetpointKind.LEG_KW, "to-mall") == -4.0
    assert sp.value_kw("mall-dgr", SetpointKind.LEG_KW, "to-home-1") == pytest.approx(3.88)
    assert d.plan_step == 0 and not d.used_fallback


def test_battery_and_pv_targets_and_expiry(misono, now):
    n = 7
    plan = plan_with(misono, battery_discharge_kw=np.full((n, 4), 1.5),
                     pv_used_kw=np.full((n, 4), 2.0), pv_curtailed_kw=np.full((n, 4), 0.5))
    d = _following(misono, now, plan)
    sp = d.setpoints
    assert sp.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == 1.5
    assert sp.value_kw("home-1-pv", SetpointKind.PV_LIMIT_KW) == 2.0  # curtailed: limited
    assert all(s.expires_at_utc == now + dt.timedelta(seconds=30) for s in sp.items)
    # No curtailment planned: the limit is the AC rating.
    d = _following(misono, now, plan_with(misono, pv_used_kw=np.full((n, 4), 2.0)))
    assert d.setpoints.value_kw("home-1-pv", SetpointKind.PV_LIMIT_KW) == 4.5


def test_real_time_correction_keeps_the_planned_exchange(misono, now):
    n = 7
    served = np.zeros((n, 4, 4))
    served[:, 0] = 2.0
    plan = plan_with(misono, battery_discharge_kw=np.full((n, 4), 1.0),
                     pv_used_kw=np.full((n, 4), 1.0), load_served_kw=served)
    readings = {"home-1": NodeReading(load_kw=2.5, pv_kw=0.8, stored_kwh=5.0),
                "home-2": NodeReading(load_kw=1.0, pv_kw=1.5, stored_kwh=5.0),
                "home-3": NodeReading(load_kw=9.0, pv_kw=0.0, stored_kwh=5.0),
                "home-4": NodeReading(load_kw=2.5, pv_kw=1.0, stored_kwh=0.5)}
    d = _following(misono, now, plan, readings)
    sp = d.setpoints
    # 1.0 + (2.5 - 2.0) - (0.8 - 1.0) = 1.7: grid and links stay as planned.
    assert sp.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == pytest.approx(1.7)
    # 1.0 + (1.0 - 2.0) - (1.5 - 1.0) = -0.5: the battery soaks up the extra PV.
    assert sp.value_kw("home-2-battery", SetpointKind.BATTERY_KW) == pytest.approx(-0.5)
    # 1.0 + 7.0 + 1.0 = 9.0 exceeds the 3 kW rating: clamped.
    assert sp.value_kw("home-3-battery", SetpointKind.BATTERY_KW) == 3.0
    # home-4 is below its minimum stored energy (0.56 kWh): it cannot give the planned
    # 1 kW either, and the rules that follow must not count on it.
    assert sp.value_kw("home-4-battery", SetpointKind.BATTERY_KW) == 0.0
    assert any("home-4" in note and "minimum" in note for note in d.notes)
    # Nodes without readings keep the plan and say so.
    assert sp.value_kw("store-battery", SetpointKind.BATTERY_KW) == 1.0
    assert any("store" in note and "no real-time correction" in note for note in d.notes)


def test_shed_tiers_follow_the_plan_and_critical_is_never_switched(misono, now):
    shed = np.zeros((7, 4, 4))
    served = np.ones((7, 4, 4))
    shed[5, 3] = 0.8   # store sheds its tier-3 share
    shed[0, 0] = 0.2   # the plan even sheds critical load at home-1
    plan = plan_with(misono, load_shed_kw=shed, load_served_kw=served)
    d = _following(misono, now, plan, mode=Mode.ISLANDED)
    assert dict(d.setpoints.shed_tiers) == {"store": (3,)}
    assert any("critical" in note for note in d.notes)
    # While the grid tie is closed nothing is ever shed, whatever the plan says.
    connected = _following(misono, now, plan, mode=Mode.GRID_CONNECTED)
    assert dict(connected.setpoints.shed_tiers) == {}
    assert any("no load shed while the grid tie is closed" in n for n in connected.notes)


def test_unhealthy_battery_and_router_get_idle_setpoints(misono, now):
    flow = np.full((7, 4), 3.0)
    plan = plan_with(misono, battery_discharge_kw=np.full((7, 4), 2.0), link_flow_kw=flow)
    d = _following(misono, now, plan, unhealthy=("home-1-battery", "store-dgr"))
    sp = d.setpoints
    assert sp.value_kw("home-1-battery", SetpointKind.BATTERY_KW) == 0.0
    assert sp.value_kw("home-2-battery", SetpointKind.BATTERY_KW) == 2.0
    assert sp.value_kw("store-dgr", SetpointKind.LEG_KW, "to-mall") == 0.0
    assert sp.value_kw("mall-dgr", SetpointKind.LEG_KW, "to-store") == 0.0
    assert sp.value_kw("home-5-dgr", SetpointKind.LEG_KW, "to-store") == 0.0
    assert sp.value_kw("home-1-dgr", SetpointKind.LEG_KW, "to-home-2") == -3.0


def _limits(site):
    """(kind, device id, leg id) -> (lowest, highest) allowed value [kW]."""
    out = {}
    links = {link.id: link for link in site.links}
    for _, device in site.all_devices():
        if isinstance(device, BatteryDevice):
            out[(SetpointKind.BATTERY_KW, device.id, None)] = (-device.rating.max_charge_kw,
                                                                device.rating.max_discharge_kw)
        elif isinstance(device, PvInverterDevice):
            out[(SetpointKind.PV_LIMIT_KW, device.id, None)] = (0.0, device.rating.ac_kw)
        elif isinstance(device, RouterDevice):
            for leg in device.legs:
                if leg.kind == "link":
                    cap = min(leg.capacity_kw, device.rating.rated_kw, links[leg.link].capacity_kw)
                    out[(SetpointKind.LEG_KW, device.id, leg.id)] = (-cap, cap)
    return out


LIMITS = _limits(SITE)
power = st.floats(min_value=-500.0, max_value=500.0, allow_nan=False)
node_arrays = arrays(float, (7, 1), elements=st.floats(0.0, 400.0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charge=node_arrays, discharge=node_arrays, pv_used=node_arrays, curtailed=node_arrays,
       flow=arrays(float, (7, 1), elements=power),
       load=st.lists(st.one_of(st.none(), st.floats(0.0, 500.0)), min_size=7, max_size=7),
       pv=st.lists(st.one_of(st.none(), st.floats(0.0, 500.0)), min_size=7, max_size=7),
       stored=st.lists(st.one_of(st.none(), st.floats(-10.0, 400.0)), min_size=7, max_size=7),
       mode=st.sampled_from(list(Mode)))
def test_setpoints_never_exceed_ratings(charge, discharge, pv_used, curtailed, flow, load, pv,
                                        stored, mode):
    now = NOON_UTC
    plan = plan_with(SITE, n_steps=1, battery_charge_kw=charge, battery_discharge_kw=discharge,
                     pv_used_kw=pv_used, pv_curtailed_kw=curtailed, link_flow_kw=flow)
    readings = {node.id: NodeReading(load_kw=load[i], pv_kw=pv[i], stored_kwh=stored[i])
                for i, node in enumerate(SITE.nodes)}
    for state in (accept_plan(ControllerState(mode, now), plan, plan_start_utc(SITE, now), now),
                  initial_state(now, mode)):  # the plan, and the fallback without one
        decision = decide(SITE, state, snapshot(SITE, now, readings), now)
        seen = set()
        for s in decision.setpoints.items:
            lo, hi = LIMITS[(s.kind, s.device_id, s.leg_id)]
            assert lo - 1e-9 <= s.value_kw <= hi + 1e-9, s
            assert s.expires_at_utc == now + dt.timedelta(seconds=SITE.control.setpoint_expiry_s)
            seen.add((s.kind, s.device_id, s.leg_id))
        assert seen == set(LIMITS)  # every controllable device and link leg is commanded


def test_correction_without_bounds_is_pure_arithmetic(misono, now):
    idx = site_index(misono)
    targets = step_targets(plan_with(misono, n_steps=1, battery_charge_kw=np.full((7, 1), 2.0)),
                           0)
    readings = {"home-1": NodeReading(load_kw=1.0, pv_kw=0.0),
                "home-5": NodeReading(load_kw=1.0, pv_kw=0.0)}
    fixed, _ = correct_targets(idx, targets, snapshot(misono, now, readings))
    assert fixed.battery_kw[0] == pytest.approx(-1.0)  # -2 + 1 kW of load the plan did not see
    assert fixed.battery_kw[4] == -2.0  # home-5 has no battery to absorb anything
    sp, _ = make_setpoints(misono, idx, fixed, snapshot(misono, now), now, grid_tie_open=True)
    assert sp.grid_tie_open
