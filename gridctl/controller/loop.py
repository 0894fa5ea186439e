"""One control loop for the daemon and the simulator.

Each cycle, whoever drives it (``gridctl run`` on live readings, ``gridctl simulate`` on a
simulated plant) calls :func:`run_cycle` with one snapshot; it calls :func:`step`, hands a
plan request to the driver's planner, takes a finished plan when there is one, and returns
the setpoints to write.  :func:`step` is pure:

0. a switched node's load reading, which sees only its connected circuits, is taken back to
   its demand (:func:`~gridctl.controller.shedding.demand_snapshot`);
1. the mode state machine (:func:`~gridctl.controller.transitions.transition`);
2. bookkeeping from the readings: the billing context (month-to-date import, demand peaks)
   and the grid-origin part of each battery's energy; a change in device health asks for a
   re-plan.  A snapshot not newer than the last one is not counted twice, so a cycle may
   call :func:`step` again with the same snapshot once a plan arrives;
3. plan intake: a finished plan is accepted when the mode is still the one it was made for;
4. the re-plan decision (:func:`replan_due`): no plan, an old one, one about to run out, or
   something the plan does not know; never while a solve is outstanding;
5. the decision for now (:func:`~gridctl.controller.decide.decide`);
6. the load switches (:func:`~gridctl.controller.shedding.advance`): the decision's shed tiers
   actuated, verified and restored through the nodes' switches.

The daemon's planner solves in a worker thread and its :meth:`Planner.poll` never waits; the
simulator's solves at once.  Everything else is the same code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.billing import observe_billing
from gridctl.controller.decide import accept_plan, decide, plan_step_index
from gridctl.controller.origin import grey_step
from gridctl.controller.problem import plan_start_utc
from gridctl.controller.rules import link_net_in_kw
from gridctl.controller.shedding import advance as advance_switches
from gridctl.controller.shedding import demand_snapshot
from gridctl.controller.topology import site_index
from gridctl.controller.transitions import reconnect_at, transition
from gridctl.controller.types import ControllerState, Decision, Mode, Snapshot, Transition
from optimizer import DispatchPlan

__all__ = ["FinishedPlan", "MIN_REPLAN_SPACING_S", "PlanRequest", "Planner", "Step",
           "observe", "plan_deadline_s", "replan_due", "request_replan", "run_cycle", "step"]

#: Least time between two solves when a plan is only about to run out [s].
MIN_REPLAN_SPACING_S = 30.0
#: Longest gap over which battery flows are attributed to an origin [s] (a restart resumes).
MAX_ORIGIN_GAP_S = 3600.0


@dataclass(frozen=True, eq=False)
class PlanRequest:
    """What to plan from: the state and readings of the cycle that asked, and when.

    ``plan_start_utc`` is the start of the plan's step 0 (taken before solving).
    """

    state: ControllerState
    snapshot: Snapshot
    now: dt.datetime
    plan_start_utc: dt.datetime


@dataclass(frozen=True, eq=False)
class FinishedPlan:
    """A plan and the request it answers."""

    request: PlanRequest
    plan: DispatchPlan


@dataclass(frozen=True, eq=False)
class Step:
    """What one cycle decided.

    Attributes
    ----------
    state : ControllerState
        The state to keep for the next cycle.
    decision : Decision
        Setpoints to write now.
    transition : Transition
        The mode state machine's step (signal, change, notes).
    request : PlanRequest or None
        A new plan to make, when one is due.
    accepted : DispatchPlan or None
        The finished plan taken in this cycle.
    """

    state: ControllerState
    decision: Decision
    transition: Transition
    request: PlanRequest | None = None
    accepted: DispatchPlan | None = None


class Planner(Protocol):
    """The driver's solver: takes requests, hands back finished plans."""

    def submit(self, request: PlanRequest) -> bool:
        """Start solving ``request``; False when it cannot (busy)."""

    def poll(self) -> FinishedPlan | None:
        """A finished plan not yet handed back, or None (never waits)."""


def plan_deadline_s(site: SiteConfig) -> float:
    """How long a requested plan may take before it is given up [s]."""
    return 2.0 * site.control.solver_time_limit_s + 5.0


def request_replan(state: ControllerState) -> ControllerState:
    """``state`` asking for a re-plan at the next cycle (an operator changed something)."""
    return replace(state, replan_wanted=True)


def replan_due(site: SiteConfig, state: ControllerState, now: dt.datetime) -> bool:
    """True when a new plan should be asked for now (see the module text)."""
    asked = state.plan_requested_utc
    if asked is not None and (now - asked).total_seconds() < plan_deadline_s(site):
        return False
    if state.plan is None or state.plan_made_at_utc is None or state.replan_wanted:
        return True
    age_s = (now - state.plan_made_at_utc).total_seconds()
    if age_s >= site.control.replan_period_s:
        return True
    step_index = plan_step_index(state, now)
    running_out = step_index is None or step_index >= state.plan.n_steps - 1
    return running_out and age_s >= MIN_REPLAN_SPACING_S


def observe(site: SiteConfig, state: ControllerState, snapshot: Snapshot) -> ControllerState:
    """Fold the readings into the billing context and the battery origins (once per snapshot)."""
    at = snapshot.at_utc
    if state.observed_utc is not None and at <= state.observed_utc:
        return state
    faults = frozenset(d for d in _device_ids(site) if not snapshot.device_ok(d))
    changes: dict = {"billing": observe_billing(site, state.billing, snapshot), "observed_utc": at,
                     "device_faults": faults}
    if faults != state.device_faults:
        changes["replan_wanted"] = True
    if state.observed_utc is not None:
        gap_s = (at - state.observed_utc).total_seconds()
        if 0 < gap_s <= MAX_ORIGIN_GAP_S:
            changes["grey_kwh"] = _grey(site, state, snapshot, gap_s / 3600.0)
    return replace(state, **changes)


def _device_ids(site: SiteConfig) -> list[str]:
    return [d.id for _, d in site.all_devices()]


def _grey(site: SiteConfig, state: ControllerState, snapshot: Snapshot, hours: float) -> dict[str, float]:
    idx = site_index(site)
    n = idx.n_nodes

    def reading(name: str) -> np.ndarray:
        return np.array([np.nan if (v := getattr(snapshot.node(i), name)) is None else v
                         for i in idx.node_ids], dtype=float)

    flows = np.array([np.nan_to_num(snapshot.link_flow_kw.get(link.link_id) or 0.0)
                      for link in idx.links], dtype=float)
    eta_c, eta_d, stored = np.ones(n), np.ones(n), reading("stored_kwh")
    for i, batteries in enumerate(idx.batteries):
        if batteries:
            eta_c[i] = batteries[0].rating.charge_efficiency_pct / 100.0
            eta_d[i] = batteries[0].rating.discharge_efficiency_pct / 100.0
            soc = snapshot.node(idx.node_ids[i]).soc_pct
            if np.isnan(stored[i]) and soc is not None:
                stored[i] = soc / 100.0 * sum(b.rating.capacity_kwh for b in batteries)
    grey = np.array([state.grey_kwh.get(i, 0.0) for i in idx.node_ids], dtype=float)
    connected = state.mode in (Mode.GRID_CONNECTED, Mode.PLANNED_ISLANDING)
    result = grey_step(grey, stored, reading("battery_kw"), reading("grid_kw"),
                       -link_net_in_kw(idx, flows), hours, eta_c, eta_d, connected)
    return {node_id: float(v) for node_id, v in zip(idx.node_ids, result.grey_kwh) if v > 0}


def _intake(state: ControllerState, finished: FinishedPlan | None,
            now: dt.datetime) -> tuple[ControllerState, DispatchPlan | None]:
    if finished is None:
        return state, None
    state = replace(state, plan_requested_utc=None)
    if finished.request.state.mode is not state.mode:
        return state, None  # made for another grid availability: drop it
    return accept_plan(state, finished.plan, finished.request.plan_start_utc, now), finished.plan


def step(site: SiteConfig, state: ControllerState, snapshot: Snapshot, now: dt.datetime,
         finished: FinishedPlan | None = None) -> Step:
    """One pure cycle of the controller (see the module text)."""
    snapshot = demand_snapshot(site, state.shedding, snapshot)
    tr = transition(site, state, snapshot, now)
    state = observe(site, tr.state, snapshot)
    state, accepted = _intake(state, finished, now)
    request = None
    if replan_due(site, state, now):
        request = PlanRequest(state, snapshot, now, plan_start_utc(site, now))
        state = replace(state, plan_requested_utc=now, replan_wanted=False)
    decision = decide(site, state, snapshot, now)
    closes_at = reconnect_at(site, state, now) if state.mode is Mode.RECONNECTING else None
    switched = advance_switches(site, state.shedding, decision.setpoints, snapshot, now, closes_at)
    if switched.commands or switched.notes:
        decision = replace(decision, setpoints=replace(decision.setpoints, switch_commands=switched.commands),
                           notes=decision.notes + switched.notes)
    state = replace(state, shedding=switched.state)
    return Step(state, decision, tr, request, accepted)


def run_cycle(site: SiteConfig, state: ControllerState, snapshot: Snapshot, now: dt.datetime,
              planner: Planner) -> Step:
    """Drive :func:`step` with a planner: the one loop of the daemon and the simulator.

    A plan that finished since the last cycle is taken first; a request is handed to the
    planner; a plan that is already done (the simulator's, or a quick solve) is taken at once
    with a second :func:`step` on the same readings.  A request the planner refuses is asked
    again after the plan deadline.
    """
    result = step(site, state, snapshot, now, planner.poll())
    if result.request is None or not planner.submit(result.request):
        return result
    done = planner.poll()
    if done is None:
        return result
    again = step(site, result.state, snapshot, now, done)
    return replace(again, request=result.request, transition=result.transition)
