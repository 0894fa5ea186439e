"""The block's rules in the controller: real-time enforcement, billing context, origins, loop."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from gridctl.controller import (
    ControllerState,
    Mode,
    NodeReading,
    SetpointKind,
    accept_plan,
    decide,
    demand_basis_kw,
    initial_state,
    observe_billing,
    plan_start_utc,
    step,
)
from gridctl.controller.origin import grey_step
from gridctl.controller.rules import NodeContext, enforce_rules, link_net_in_kw
from gridctl.controller.setpoints import StepTargets, within_ratings
from gridctl.controller.topology import site_index
from gridctl.controller.types import BillingState, NodeBilling
from tests.controller.sitekit import plan_with, snapshot

UTC = dt.timezone.utc


def _following(site, now, plan, readings, state=None):
    base = state or ControllerState(Mode.GRID_CONNECTED, now)
    return decide(site, accept_plan(base, plan, plan_start_utc(site, now), now),
                  snapshot(site, now, readings), now)


def _node_readings(site, **special):
    out = {n.id: NodeReading(pv_kw=0.0, load_kw=0.0, stored_kwh=None) for n in site.nodes}
    out.update(special)
    return out


def test_a_link_send_is_cut_when_the_sender_would_import(misono, now):
    # The plan sends 3 kW of home-1's PV to home-2; a cloud takes the PV and home-1's battery
    # is at its minimum, so keeping the send would import grid power for home-2: resale.
    flow = np.zeros((7, 4))
    flow[0] = 3.0
    load = np.zeros((7, 4, 4))
    load[0, 0], load[1, 0] = 1.0, 2.91  # home-2 uses what arrives
    plan = plan_with(misono, link_flow_kw=flow, load_served_kw=load,
                     pv_used_kw=np.where(np.arange(7)[:, None] == 0, 4.0, 0.0))
    floor = 0.98  # home-1: 9.8 kWh x 10 %
    home_2 = NodeReading(pv_kw=0.0, load_kw=2.91, stored_kwh=1.28)
    readings = _node_readings(misono, **{"home-1": NodeReading(pv_kw=1.0, load_kw=1.0, stored_kwh=floor),
                                         "home-2": home_2})
    d = _following(misono, now, plan, readings)
    assert d.setpoints.value_kw("home-1-dgr", SetpointKind.LEG_KW, "to-home-2") == pytest.approx(0.0)
    assert any("no resale" in n for n in d.notes)
    # With sun as planned the send stays.
    sunny = _node_readings(misono, **{"home-1": NodeReading(pv_kw=4.0, load_kw=1.0, stored_kwh=floor),
                                      "home-2": home_2})
    kept = _following(misono, now, plan, sunny)
    assert kept.setpoints.value_kw("home-1-dgr", SetpointKind.LEG_KW, "to-home-2") == pytest.approx(-3.0)


def test_a_fit_meter_takes_no_inflow_it_would_export(misono, now):
    # home-2 expects 3 kW over the link for its load; the load does not come and its battery
    # is full: the inflow would leave through a FIT meter, so the link is cut.
    flow = np.zeros((7, 4))
    flow[0] = 3.0
    load = np.zeros((7, 4, 4))
    load[1, 0] = 3.0
    plan = plan_with(misono, link_flow_kw=flow, load_served_kw=load,
                     pv_used_kw=np.where(np.arange(7)[:, None] == 0, 3.0, 0.0))
    full = 12.16  # home-2: 12.8 kWh x 95 %
    readings = _node_readings(misono, **{
        "home-1": NodeReading(pv_kw=3.0, load_kw=0.0, stored_kwh=5.0),
        "home-2": NodeReading(pv_kw=0.0, load_kw=0.0, stored_kwh=full)})
    d = _following(misono, now, plan, readings)
    assert d.setpoints.value_kw("home-2-dgr", SetpointKind.LEG_KW, "to-home-1") == pytest.approx(0.0)
    assert any("FIT meter" in n for n in d.notes)


def test_grid_charging_is_cut_at_the_contracted_demand(misono_demand, now):
    # The store (demand charge) planned to charge 10 kW on top of a 10 kW load; its peak this
    # month is 12 kW, so it may import 12 kW: the charge is cut to 2 kW.
    site = misono_demand
    charge = np.where(np.arange(7)[:, None] == 5, 10.0, 0.0)
    plan = plan_with(site, battery_charge_kw=charge,
                     load_served_kw=np.where(np.arange(7)[:, None, None] == 5, 10.0 / 4, 0.0))
    billing = BillingState({"store": NodeBilling("2026-08", month_peak_kw=12.0)})
    readings = _node_readings(site, store=NodeReading(pv_kw=0.0, load_kw=10.0, stored_kwh=10.0))
    d = _following(site, now, plan, readings, state=initial_state(now, billing=billing))
    assert d.setpoints.value_kw("store-battery", SetpointKind.BATTERY_KW) == pytest.approx(-2.0)
    assert any("demand peak" in n for n in d.notes)


def test_billing_folds_counters_into_periods_months_and_the_window(misono):
    t0 = dt.datetime(2026, 8, 31, 14, 0, tzinfo=UTC)  # 23:00 JST, the last day of August

    def snap(at, counter=None, grid_kw=None):
        return snapshot(misono, at, {"store": NodeReading(grid_import_kwh=counter, grid_kw=grid_kw)})

    b = observe_billing(misono, BillingState(), snap(t0, 100.0))
    b = observe_billing(misono, b, snap(t0 + dt.timedelta(minutes=15), 101.0))
    assert b.nodes["store"].period_import_kwh == pytest.approx(1.0)
    same = observe_billing(misono, b, snap(t0 + dt.timedelta(minutes=15), 101.0))
    assert same is b  # a snapshot seen already changes nothing
    b = observe_billing(misono, b, snap(t0 + dt.timedelta(minutes=30), 103.0))
    store = b.nodes["store"]
    assert store.month_peak_kw == pytest.approx(6.0)  # 3 kWh in the closed half hour
    assert store.month_import_kwh == pytest.approx(3.0) and store.month == "2026-08"
    # 23:30 -> 00:00 JST: the period closes into August, then September starts afresh.
    b = observe_billing(misono, b, snap(t0 + dt.timedelta(minutes=60), 105.0))
    store = b.nodes["store"]
    assert store.month == "2026-09" and store.month_import_kwh == 0.0
    assert store.past_peaks_kw == (("2026-08", 6.0),) and store.month_peak_kw == 0.0
    assert demand_basis_kw(store, 12) == pytest.approx(6.0)
    assert demand_basis_kw(store, 1) == 0.0  # a monthly peak forgets August
    # A counter that goes back is a meter reset: re-based, nothing counted.
    b = observe_billing(misono, b, snap(t0 + dt.timedelta(minutes=75), 2.0))
    assert b.nodes["store"].period_import_kwh == pytest.approx(0.0)
    # Without a counter the grid power is integrated over the gap (15 min at 8 kW: 2 kWh).
    b = observe_billing(misono, b, snap(t0 + dt.timedelta(minutes=90), None, grid_kw=8.0))
    assert b.nodes["store"].month_import_kwh == pytest.approx(2.0)
    b = observe_billing(misono, b, snap(t0 + dt.timedelta(hours=3), None, grid_kw=8.0))
    assert b.nodes["store"].month_import_kwh == pytest.approx(2.0)  # a 90-min gap: unknown


def test_grey_energy_follows_grid_charging_and_stays_home():
    ones = np.ones(2)
    # Node 0 charges 4 kW while importing 3 kW: 3 kW of it is grid energy (1 h, eta 1).
    step1 = grey_step(np.zeros(2), np.array([4.0, np.nan]), np.array([-4.0, 0.0]),
                      np.array([3.0, 0.0]), np.zeros(2), 1.0, ones, ones, True)
    assert step1.grey_kwh.tolist() == pytest.approx([3.0, 0.0])
    # Discharging 2 kW for its own load uses grey first; sending 2 kW is green.
    own = grey_step(step1.grey_kwh, np.array([2.0, np.nan]), np.array([2.0, 0.0]), np.zeros(2),
                    np.zeros(2), 1.0, ones, ones, True)
    assert own.discharge_grey_kw[0] == pytest.approx(2.0) and own.grey_kwh[0] == pytest.approx(1.0)
    # Sending 2 kW is green first: 1 kWh of green energy, so 1 kW of it had to be grey.
    sent = grey_step(step1.grey_kwh, np.array([2.0, np.nan]), np.array([2.0, 0.0]), np.zeros(2),
                     np.array([2.0, 0.0]), 1.0, ones, ones, True)
    assert sent.discharge_grey_kw[0] == pytest.approx(1.0)
    ample = grey_step(np.array([1.0, 0.0]), np.array([8.0, np.nan]), np.array([2.0, 0.0]),
                      np.zeros(2), np.array([2.0, 0.0]), 1.0, ones, ones, True)
    assert ample.discharge_grey_kw[0] == pytest.approx(0.0)  # 9 kWh green: the send is green
    # Islanded, charging is green whatever the meter says.
    island = grey_step(np.zeros(2), np.array([4.0, np.nan]), np.array([-4.0, 0.0]),
                       np.array([3.0, 0.0]), np.zeros(2), 1.0, ones, ones, False)
    assert island.grey_kwh[0] == 0.0


def test_step_counts_a_snapshot_once_and_asks_for_a_plan_when_devices_change(misono, now):
    snap = snapshot(misono, now, {"store": NodeReading(grid_import_kwh=10.0)})
    first = step(misono, initial_state(now), snap, now)
    assert first.request is not None and first.state.plan_requested_utc == now
    again = step(misono, first.state, snap, now)
    assert again.state.billing is first.state.billing and again.request is None
    later = now + dt.timedelta(seconds=2)
    sick = snapshot(misono, later, {"store": NodeReading(grid_import_kwh=10.5)},
                    unhealthy=("store-battery",))
    state = replace(first.state, plan_requested_utc=None)
    result = step(misono, state, sick, later)
    assert "store-battery" in result.state.device_faults and result.request is not None
    assert result.state.billing.nodes["store"].period_import_kwh == pytest.approx(0.5)


def test_a_plan_made_for_another_mode_is_dropped(misono, now):
    from gridctl.controller import FinishedPlan, PlanRequest

    first = step(misono, initial_state(now), snapshot(misono, now), now)
    islanded = replace(first.state, mode=Mode.ISLANDED)
    plan = plan_with(misono)
    done = FinishedPlan(PlanRequest(first.state, snapshot(misono, now), now, now), plan)
    result = step(misono, islanded, snapshot(misono, now + dt.timedelta(seconds=2)),
                  now + dt.timedelta(seconds=2), done)
    assert result.accepted is None and result.state.plan is None


@pytest.fixture(scope="module")
def misono_demand(misono):
    """Misono with a demand charge on the store (1,800 JPY/kW-month over 12 months)."""
    nodes = [n if n.id != "store" else n.model_copy(update={"contract": n.contract.model_copy(
        update={"demand_charge_jpy_per_kw_month": 1800.0})}) for n in misono.nodes]
    return misono.model_copy(update={"nodes": nodes})


def _chain_targets(site, idx, path, own_kw, battery_kw, pv_kw, load_kw):
    """Targets sending each node's ``own_kw`` down ``path`` (node ids, last one receives all),
    every relay forwarding what arrives."""
    at = {nid: k for k, nid in enumerate(idx.node_ids)}
    flow = np.zeros(len(idx.links))
    carried = 0.0
    for a, b in zip(path, path[1:]):
        carried += own_kw[at[a]]
        j, link = next((j, link) for j, link in enumerate(idx.links)
                       if {link.from_node, link.to_node} == {at[a], at[b]})
        flow[j] = carried if link.from_node == at[a] else -carried
        carried *= link.efficiency
    n_tiers = len(idx.tier_numbers)
    return StepTargets(battery_kw=battery_kw, pv_limit_kw=np.full(idx.n_nodes, np.inf),
                       link_flow_kw=flow, shed=np.zeros((idx.n_nodes, n_tiers), bool),
                       pv_kw=pv_kw, load_kw=load_kw)


def test_a_send_down_a_relay_chain_is_cut_to_the_own_surplus_the_devices_can_give(misono, now):
    """home-3 and home-2 send PV plus full discharge toward the mall through home-1; the PV comes
    in 0.2 kW short and the plan-following correction asks each battery for 0.2 kW more than its
    rating. What the devices can give is the surplus: each send is cut to it, and by no more
    (a cut that also stopped the green discharge backing the rest would chase itself down the
    chain until the batteries stood idle)."""
    idx = site_index(misono)
    at = {nid: k for k, nid in enumerate(idx.node_ids)}
    rating = np.array([sum(b.rating.max_discharge_kw for b in bats) for bats in idx.batteries])
    pv_plan, load = np.zeros(idx.n_nodes), np.zeros(idx.n_nodes)
    battery = np.zeros(idx.n_nodes)
    for name in ("home-3", "home-2"):
        k = at[name]
        pv_plan[k], load[k], battery[k] = 1.0, 0.5, rating[k] + 0.2  # corrected past the rating
    own_plan = pv_plan + np.minimum(battery, rating) - load
    targets = _chain_targets(misono, idx, ["home-3", "home-2", "home-1", "mall"],
                             np.where(pv_plan > 0, own_plan + 0.2, 0.0), battery, pv_plan, load)
    pv_now = pv_plan - 0.2 * (pv_plan > 0)
    ctx = NodeContext(load_kw=load, pv_kw=pv_now,
                      battery_export_allowed=np.ones(idx.n_nodes, bool),
                      demand_guard_kw=np.full(idx.n_nodes, np.inf), grid_available=True,
                      tie_open=False)
    held = within_ratings(idx, targets, snapshot(misono, now))
    out, notes = enforce_rules(idx, held, ctx)
    delivered = np.clip(out.battery_kw, 0.0, rating)  # what the devices can give
    surplus = np.maximum(pv_now + delivered - load, 0.0)
    send = -link_net_in_kw(idx, out.link_flow_kw)
    assert np.all(send <= surplus + 1e-6), (send, surplus)
    assert np.all(out.battery_kw <= rating + 1e-9)
    for name in ("home-3", "home-2"):  # each still sends its whole surplus: PV + full discharge
        k = at[name]
        assert send[k] == pytest.approx(pv_now[k] + rating[k] - load[k], abs=1e-6)
    assert any("no resale" in n for n in notes)
