"""Each cycle's decision: follow the current plan step with real-time correction, or fall back.

The plan is usable when it exists, covers ``now``, was made no longer ago than two re-plan
periods plus the solver time limit, and fits the site.  Otherwise a one-step problem is built
from the measurements alone and dispatched by the optimizer's rule-based
:func:`optimizer.fallback_plan` (self-consumption first, surplus shared with neighbours in
deficit over the links, reserve kept, sheddable tiers shed in order when islanded).  Either
way the block's rules are then kept on the targets (:mod:`gridctl.controller.rules`) before
they become clamped, expiring setpoints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.problem import (
    battery_data,
    grid_data,
    link_data,
    plan_start_utc,
    price_arrays,
    split_tiers,
)
from gridctl.controller.rules import NodeContext, enforce_rules
from gridctl.controller.setpoints import (
    StepTargets,
    correct_targets,
    make_setpoints,
    step_targets,
    within_ratings,
)
from gridctl.controller.topology import SiteIndex, site_index
from gridctl.controller.types import ControllerState, Decision, Mode, Setpoints, Snapshot
from optimizer import DispatchPlan, DispatchProblem, PlanStatus, fallback_plan

__all__ = [
    "accept_plan",
    "decide",
    "fallback_problem",
    "idle_setpoints",
    "plan_step_index",
]

#: Grid flow in a plan step regarded as none [kW].
_EPS_KW = 1e-3


def accept_plan(state: ControllerState, plan: DispatchPlan, plan_start: dt.datetime,
                now: dt.datetime) -> ControllerState:
    """The state with ``plan`` (whose step 0 starts at ``plan_start``) made at ``now``."""
    return replace(state, plan=plan, plan_start_utc=plan_start, plan_made_at_utc=now)


def max_plan_age_s(site: SiteConfig) -> float:
    """Age beyond which a plan is stale [s]: two re-plan periods plus the solver time limit."""
    return 2.0 * site.control.replan_period_s + site.control.solver_time_limit_s


def plan_step_index(state: ControllerState, now: dt.datetime) -> int | None:
    """Index of the plan step holding ``now``, or None outside the plan."""
    plan, start = state.plan, state.plan_start_utc
    if plan is None or start is None:
        return None
    step = int((now - start).total_seconds() // plan.step_s)
    return step if 0 <= step < plan.n_steps else None


def _unusable(site: SiteConfig, idx: SiteIndex, state: ControllerState,
              now: dt.datetime) -> str | None:
    """Why the plan cannot be followed now, or None when it can."""
    plan = state.plan
    if plan is None:
        return "no plan"
    if tuple(plan.node_ids) != idx.node_ids:
        return "plan nodes differ from the site"
    if (plan.load_served_kw.shape[1] != len(idx.tier_numbers)
            or plan.link_flow_kw.shape[0] != len(idx.links)):
        return "plan tiers or links differ from the site"
    step = plan_step_index(state, now)
    if step is None:
        return "plan does not cover now"
    age_s = (now - (state.plan_made_at_utc or now)).total_seconds()
    if age_s > max_plan_age_s(site):
        return f"plan is stale ({age_s:.0f} s old)"
    if state.mode is not Mode.GRID_CONNECTED and np.any(
            plan.grid_import_kw[:, step] + plan.grid_export_kw[:, step] > _EPS_KW):
        return f"plan uses the grid but the mode is {state.mode.value}"
    return None


def decide(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
           now: dt.datetime) -> Decision:
    """Setpoints for now: the plan's current step corrected in real time, or the fallback.

    Parameters
    ----------
    site : SiteConfig
    state : ControllerState
        After :func:`gridctl.controller.transition` for this cycle.
    snapshot : Snapshot
        This cycle's readings.
    now : datetime
        Current time (tz-aware).

    Returns
    -------
    Decision
        Clamped setpoints expiring ``control.setpoint_expiry_s`` after ``now``; ``used_fallback``
        when no usable solver plan was followed.
    """
    idx = site_index(site)
    tie_open = state.mode in (Mode.ISLANDED, Mode.RECONNECTING)
    why = _unusable(site, idx, state, now)
    if why is None:
        step = plan_step_index(state, now)
        targets = step_targets(state.plan, step)
        lo, hi = _stored_bounds(site)
        targets, fix_notes = correct_targets(idx, targets, snapshot, (lo, hi),
                                             site.control.plan_step_min / 60.0)
        used_fallback = state.plan.status is PlanStatus.FALLBACK
        head = (("following a fallback plan",) if used_fallback else ()) + fix_notes
    else:
        problem, unknown, p_notes = fallback_problem(site, state, snapshot, now)
        targets = step_targets(fallback_plan(problem, note=why), 0)
        battery = targets.battery_kw.copy()
        battery[unknown] = 0.0  # without PV or load readings the deficit is unknown: stay idle
        targets = replace(targets, battery_kw=battery)
        idle = tuple(f"node {idx.node_ids[n]}: PV or load not measured; battery idle"
                     for n in np.flatnonzero(unknown))
        used_fallback, step, head = True, None, (f"fallback: {why}",) + p_notes + idle
    targets = within_ratings(idx, targets, snapshot)
    targets, rule_notes = enforce_rules(idx, targets, _context(site, idx, state, snapshot))
    setpoints, notes = make_setpoints(site, idx, targets, snapshot, now, tie_open)
    return Decision(setpoints, head + rule_notes + notes, used_fallback, step)


def _context(site: SiteConfig, idx: SiteIndex, state: ControllerState,
             snapshot: Snapshot) -> NodeContext:
    """What the rules need to know of each node this cycle."""
    def measured(name: str) -> np.ndarray:
        return np.array([np.nan if (v := getattr(snapshot.node(n), name)) is None else v
                         for n in idx.node_ids], dtype=float)

    billing = state.billing.nodes
    guard = np.array([
        (billing[n.id].month_peak_kw if n.id in billing else 0.0)
        if n.contract.demand_charge_jpy_per_kw_month > 0 else np.inf for n in site.nodes])
    lead = dt.timedelta(hours=site.islanding.warned_reserve_hours_h)
    if any(snapshot.at_utc <= w.start_utc <= snapshot.at_utc + lead for w in state.outage_windows):
        guard = np.full(len(site.nodes), np.inf)  # a warned outage ahead: resilience first
    return NodeContext(
        load_kw=measured("load_kw"), pv_kw=measured("pv_kw"),
        battery_export_allowed=np.array([n.contract.battery_export_allowed for n in site.nodes]),
        demand_guard_kw=guard,
        grid_available=state.mode in (Mode.GRID_CONNECTED, Mode.PLANNED_ISLANDING),
        tie_open=state.mode in (Mode.ISLANDED, Mode.RECONNECTING),
        green_kw=_green_kw(site, idx, state, snapshot))


def _green_kw(site: SiteConfig, idx: SiteIndex, state: ControllerState,
              snapshot: Snapshot) -> np.ndarray:
    """Battery power each node can give from green stored energy over a plan step [kW]."""
    step_h = site.control.plan_step_min / 60.0
    out = np.zeros(idx.n_nodes)
    for n, batteries in enumerate(idx.batteries):
        if not batteries:
            continue
        reading = snapshot.node(idx.node_ids[n])
        capacity = sum(b.rating.capacity_kwh for b in batteries)
        stored = reading.stored_kwh if reading.stored_kwh is not None else (
            None if reading.soc_pct is None else reading.soc_pct / 100.0 * capacity)
        if stored is None:
            out[n] = np.inf  # unknown: not limited here
            continue
        green = max(stored - float(state.grey_kwh.get(idx.node_ids[n], 0.0)), 0.0)
        out[n] = green * batteries[0].rating.discharge_efficiency_pct / 100.0 / step_h
    return out


def _stored_bounds(site: SiteConfig) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([sum(d.rating.capacity_kwh * d.rating.soc_min_pct / 100 for d in n.batteries)
                   for n in site.nodes])
    hi = np.array([sum(d.rating.capacity_kwh * d.rating.soc_max_pct / 100 for d in n.batteries)
                   for n in site.nodes])
    return lo, hi


def fallback_problem(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
                     now: dt.datetime) -> tuple[DispatchProblem, np.ndarray, tuple[str, ...]]:
    """A one-step problem made from the measurements alone, for the rule-based fallback.

    PV and load are this cycle's readings (a missing reading counts as 0 kW PV and as the
    node's mean load ``annual_kwh / 8760``); the grid is available only when grid-connected;
    the reserve is ``reserve_hours_h`` of the measured critical load.

    Returns
    -------
    (DispatchProblem, ndarray of bool, tuple of str)
        The problem; per node whether PV or load was not measured; notes.
    """
    idx = site_index(site)
    notes: list[str] = []
    pv = np.zeros((idx.n_nodes, 1))
    total = np.zeros((idx.n_nodes, 1))
    unknown = np.zeros(idx.n_nodes, dtype=bool)
    for n, node in enumerate(site.nodes):
        r = snapshot.node(node.id)
        unknown[n] = r.pv_kw is None or r.load_kw is None
        rating = sum(d.rating.ac_kw for d in idx.pv_inverters[n])
        pv[n, 0] = min(max(r.pv_kw or 0.0, 0.0), rating)
        total[n, 0] = max(r.load_kw, 0.0) if r.load_kw is not None else node.load.annual_kwh / 8760
    load = split_tiers(idx, total)
    start = plan_start_utc(site, now)
    try:
        imp, exp, tiers = price_arrays(site, state, [start])
    except LookupError as exc:
        # The fallback must work even without a valid tariff; prices do not steer it.
        notes.append(f"no prices for the fallback: {exc}")
        imp = exp = np.zeros((idx.n_nodes, 1))
        tiers = None
    available = np.array([state.mode is Mode.GRID_CONNECTED])
    battery = battery_data(site, idx, snapshot, imp, notes, state)
    reserve_kwh = site.islanding.reserve_hours_h * float(load[:, 0, 0].sum())
    reserve = np.array([min(reserve_kwh, float(battery.soc_max_kwh.sum()))
                        if available[0] else 0.0])
    problem = DispatchProblem(
        node_ids=idx.node_ids,
        step_s=float(site.control.plan_step_min * 60),
        pv_available_kw=pv,
        pv_curtailable=np.array([len(p) > 0 for p in idx.pv_inverters]),
        load_kw=load,
        value_of_lost_load_jpy_per_kwh=idx.voll_jpy_per_kwh,
        grid=grid_data(site, idx, state, imp, exp, available, [start], tiers),
        battery=battery,
        links=link_data(idx, snapshot, notes),
        reserve_kwh=reserve,
    )
    return problem, unknown, tuple(notes)


def idle_setpoints(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
                   now: dt.datetime) -> Setpoints:
    """Hold everything still: batteries and links at 0 kW, PV unlimited, nothing shed.

    For a controlled stop while grid-connected (the grid then balances each node).  While
    islanded an idle battery cannot carry the load: there the daemon should rather release
    control and let the devices' own revert behaviour take over.
    """
    idx = site_index(site)
    n_nodes, n_tiers = idx.n_nodes, len(idx.tier_numbers)
    targets = StepTargets(battery_kw=np.zeros(n_nodes), pv_limit_kw=np.full(n_nodes, np.inf),
                          link_flow_kw=np.zeros(len(idx.links)),
                          shed=np.zeros((n_nodes, n_tiers), dtype=bool),
                          pv_kw=np.zeros(n_nodes), load_kw=np.zeros(n_nodes))
    tie_open = state.mode in (Mode.ISLANDED, Mode.RECONNECTING)
    return make_setpoints(site, idx, targets, snapshot, now, tie_open)[0]
