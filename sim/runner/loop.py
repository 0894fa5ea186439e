"""The simulated clock: step the plant, drive a policy, settle every 30-minute period.

One step of the loop at ``now`` (step ``k``), in the order the daemon runs a cycle::

    snapshot <- PV and load of step k, grid/battery/link powers of step k-1, stored energy,
                grid-import counters and grid state at now
    policy: gridctl.controller.run_cycle (re-plan when due, decide) -> Setpoints -> PlantCommand
    plant.step(k) -> record -> at each JST half-hour boundary: counters -> settlement

The daemon polls every few seconds and corrects the batteries for the measured PV and load
each time; at a plant step of minutes the simulator gives the controller the step's own PV
and load readings, which is what those polls would see (forecasts still use only the past).
See :mod:`sim.runner.policies` for the policies.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Callable, Literal

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller import demand_basis_kw
from gridctl.controller.switches import ChannelId, shedding_actuated
from gridctl.controller.types import Setpoints, Snapshot
from gridctl.tariffs import JST
from sim.outages import OutageWindow, outage_masks
from sim.plant.block import BlockPlant, StepFlows
from sim.profiles import ProfileSet
from sim.runner.bridge import Bridge
from sim.runner.forecasting import History
from sim.runner.policies import (
    ControllerPolicy,
    StandalonePolicy,
    prior_billing,
    reserve_floor_kwh,
    site_for_simulation,
)
from sim.runner.record import Recorder, SimResult
from sim.runner.settler import Settler
from sim.runner.switches import SwitchFault

__all__ = ["Policy", "Scenario", "replan_s_of", "run_policy", "site_for_simulation"]

Policy = Literal["rolling", "foresight", "standalone"]


def replan_s_of(site: SiteConfig, step_s: float) -> float:
    """The site's re-plan period on the simulation's step grid [s]: ``control.replan_period_s``
    rounded up to whole steps (at least one), as the daemon would re-plan."""
    return step_s * max(1, int(np.ceil(site.control.replan_period_s / step_s - 1e-9)))


@dataclass(frozen=True)
class Scenario:
    """Everything one simulation needs.

    Parameters
    ----------
    site : SiteConfig
        The validated site (control timing is overridden by ``step_s``/``replan_s``).
    profiles : ProfileSet
        True PV and load, covering ``[start_utc - history, end_utc)`` on the ``step_s`` grid.
    start_utc, end_utc : datetime
        Simulated span, half-open, on step boundaries.
    step_s : float
        Plant and control step [s]; divides 30 minutes.
    replan_s : float or None
        Re-plan period of the rolling controller [s]; None: the site's ``replan_period_s``
        on the step grid (:func:`replan_s_of`).
    outages : tuple of OutageWindow
        Utility outages (with their warning lead time).
    initial_soc_pct : float
        Battery state of charge at the start [%].
    load_reading : {"demand", "served"} or None
        What a node's ``load_kw`` reading reports: the demand of all its tiers, shed or not,
        or only the load still connected (a meter upstream of the shedding contactors). None
        (the default) reads as the daemon does: ``served`` at a site whose shedding is
        actuated through switches (the routers meter what the circuits draw), ``demand``
        at a site without switches (its shedding is idealised: nothing is disconnected).
    switch_faults : Mapping[ChannelId, SwitchFault]
        Faults of simulated switch channels (stuck, late, reset at a time), by
        ``(device_id, channel)``; only for sites with ``load.switches``.
    """

    site: SiteConfig
    profiles: ProfileSet
    start_utc: dt.datetime
    end_utc: dt.datetime
    step_s: float = 900.0
    replan_s: float | None = None
    outages: tuple[OutageWindow, ...] = field(default_factory=tuple)
    initial_soc_pct: float = 50.0
    load_reading: Literal["demand", "served"] | None = None
    switch_faults: Mapping[ChannelId, SwitchFault] = field(default_factory=dict)

    @property
    def replan_period_s(self) -> float:
        """The re-plan period in force [s]."""
        return self.replan_s if self.replan_s is not None else replan_s_of(self.site, self.step_s)

    @property
    def site_for_control(self) -> SiteConfig:
        """The site with the plan step set to the simulation step."""
        return site_for_simulation(self.site, self.step_s, self.replan_period_s)

    @property
    def n_steps(self) -> int:
        """Simulated steps [-]."""
        return int(round((self.end_utc - self.start_utc).total_seconds() / self.step_s))


def _aligned_start(scenario: Scenario) -> None:
    local = scenario.start_utc.astimezone(JST)
    if local.minute % 30 or local.second or 1800 % scenario.step_s:
        raise ValueError("simulation start must lie on a JST half hour and the step divide 30 min")


#: ``trace(k, now, snapshot, setpoints, counters)`` of each controlled step: what the
#: controller read and decided, and the plant's cumulative counters at ``now``.
Trace = Callable[[int, dt.datetime, Snapshot, Setpoints, dict], None]


def run_policy(scenario: Scenario, policy: Policy,
               progress: Callable[[int, int], None] | None = None,
               trace: Trace | None = None) -> SimResult:
    """Simulate ``scenario`` under ``policy`` and return the recorded result."""
    _aligned_start(scenario)
    wall_start = time.perf_counter()
    plant = BlockPlant(scenario.site, p2p=policy != "standalone")
    bridge = Bridge(scenario.site, plant, scenario.switch_faults)
    profiles = scenario.profiles
    k0 = profiles.index_of(scenario.start_utc)
    if k0 + scenario.n_steps > len(profiles.times_utc):
        raise ValueError("profiles end before the simulated span")
    history = History(scenario.site_for_control, profiles, k0)
    starts = [scenario.start_utc + dt.timedelta(seconds=scenario.step_s * k)
              for k in range(scenario.n_steps)]
    out, _ = outage_masks(scenario.outages, starts, scenario.step_s, scenario.start_utc)
    state = plant.initial_state(scenario.initial_soc_pct)
    billing, prior = prior_billing(scenario.site, profiles, k0, scenario.start_utc)
    if policy == "standalone":
        driver = StandalonePolicy(plant, reserve_floor_kwh(scenario.site, plant, profiles))
    else:
        driver = ControllerPolicy(scenario.site, policy, scenario.step_s, scenario.replan_period_s,
                                  scenario.outages, scenario.start_utc, billing)
    settler = Settler(scenario.site, bridge, state, scenario.start_utc, prior)
    recorder = Recorder(scenario, plant, policy, state, prior)
    recorder.opening_demand_kw = np.array([
        demand_basis_kw(billing.node(n.id, ""), n.contract.demand_window_months)
        for n in scenario.site.nodes])
    last = _initial_readings(plant, profiles, k0)
    shed_now = np.zeros(len(plant.node_ids))
    reading = scenario.load_reading or ("served" if shedding_actuated(scenario.site) else "demand")
    served_only = 1.0 if reading == "served" else 0.0
    phases = {"plant": 0.0, "settle": 0.0}
    for k, now in enumerate(starts):
        index = k0 + k
        grid_ok = not out[k]
        pv, load = profiles.pv_kw[:, index], profiles.load_kw[:, index]
        pv_seen = np.minimum(pv, plant.pv_rated_kw)
        load_seen = load * (1.0 - (1.0 - plant.critical_share) * shed_now * served_only)
        if isinstance(driver, StandalonePolicy):
            cmd, tie_open = driver.command(pv_seen, load_seen, state.stored_kwh, scenario.step_s), False
        else:
            snapshot = bridge.snapshot(now, state, pv_seen, load_seen, last.grid_kw,
                                       last.battery_kw, last.link_flow_kw, grid_ok)
            history.record(snapshot)
            setpoints = driver.cycle(now, index, snapshot, history)
            cmd, tie_open = bridge.command(setpoints), setpoints.grid_tie_open
            if trace is not None:
                trace(k, now, snapshot, setpoints, bridge.counters(state))
        shed_now = cmd.shed_fraction
        t0 = time.perf_counter()
        state, flows = plant.step(state, cmd, pv, load, grid_ok and not tie_open, scenario.step_s)
        t1 = time.perf_counter()
        recorder.record(k, flows, state, pv, load, grid_ok, driver.state, tie_open)
        last = _as_readings(flows)
        settler.maybe_settle(now + dt.timedelta(seconds=scenario.step_s), state)
        phases["plant"] += t1 - t0
        phases["settle"] += time.perf_counter() - t1
        if progress is not None:
            progress(k + 1, scenario.n_steps)
    result = recorder.result(state, settler.settlements, driver, time.perf_counter() - wall_start)
    result.phase_s = {**phases, **driver.phase_s}
    return result


@dataclass(frozen=True, eq=False)
class _Readings:
    """What the meters reported for the last step [kW] (step averages)."""

    pv_kw: np.ndarray
    load_kw: np.ndarray
    grid_kw: np.ndarray
    battery_kw: np.ndarray
    link_flow_kw: np.ndarray


def _as_readings(flows: StepFlows) -> _Readings:
    served = flows.critical_served_kw + flows.sheddable_served_kw
    return _Readings(flows.pv_kw, served, flows.grid_kw, flows.battery_kw, flows.link_flow_kw)


def _initial_readings(plant: BlockPlant, profiles: ProfileSet, k0: int) -> _Readings:
    prev = max(k0 - 1, 0)
    pv, load = profiles.pv_kw[:, prev], profiles.load_kw[:, prev]
    return _Readings(pv, load, load - pv, np.zeros(len(plant.node_ids)),
                     np.zeros(len(plant.link_ids)))
