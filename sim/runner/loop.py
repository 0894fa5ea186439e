"""The simulated clock: step the plant, drive the controller core, settle every 30-minute period.

One step of the loop at ``now`` (step ``k``), in the order the daemon runs a cycle::

    snapshot <- PV and load of step k, grid/battery/link powers of step k-1, stored energy
                and grid state at now
    transition -> (re-plan if due: forecast from history, build_problem, Dispatcher.solve,
    accept_plan) -> decide -> Setpoints -> PlantCommand -> plant.step(k) -> record
    at each JST half-hour boundary: counters -> PeriodReadings -> settle_period

The daemon polls every few seconds and corrects the batteries for the measured PV and load
each time; at a plant step of minutes the simulator gives ``decide`` the step's own PV and load
readings, which is what those polls would see (forecasts still use only the past).

Policies: ``rolling`` (gridctl's controller and forecaster), ``foresight`` (the same controller
fed the true profiles, re-planning once per window over the window plus a day), and
``standalone`` (each node's own self-consumption rule, no links, no controller).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Callable, Literal

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller import (
    OutageWindow as WarnedWindow,
    accept_plan,
    build_problem,
    decide,
    initial_state,
    plan_start_utc,
    replan_due,
    transition,
)
from gridctl.settlement.readings_csv import period_readings
from gridctl.settlement.settle import settle_period
from gridctl.tariffs import JST
from optimizer.dispatcher import Dispatcher
from sim.outages import OutageWindow, outage_masks
from sim.plant.block import BlockPlant, PlantCommand, PlantState, StepFlows
from sim.profiles import ProfileSet
from sim.runner.bridge import Bridge
from sim.runner.forecasting import History, rolling_forecaster, truth_forecaster
from sim.runner.record import Recorder, SimResult

__all__ = ["Policy", "Scenario", "run_policy", "site_for_simulation"]

Policy = Literal["rolling", "foresight", "standalone"]
#: Perfect-foresight window and look-ahead [days].
FORESIGHT_WINDOW_DAYS = 7
FORESIGHT_LOOKAHEAD_DAYS = 1


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
    replan_s : float
        Re-plan period of the rolling controller [s].
    outages : tuple of OutageWindow
        Utility outages (with their warning lead time).
    initial_soc_pct : float
        Battery state of charge at the start [%].
    load_reading : {"demand", "served"}
        What a node's ``load_kw`` reading reports: the demand of all its tiers, shed or not
        (what ``NodeReading.load_kw`` is defined as, "all tiers together"), or only the load
        still connected (what a meter upstream of the shedding contactors would see; with it
        the controller re-plans step 0 from the reduced load and toggles shed tiers).
    """

    site: SiteConfig
    profiles: ProfileSet
    start_utc: dt.datetime
    end_utc: dt.datetime
    step_s: float = 900.0
    replan_s: float = 3600.0
    outages: tuple[OutageWindow, ...] = field(default_factory=tuple)
    initial_soc_pct: float = 50.0
    load_reading: Literal["demand", "served"] = "demand"

    @property
    def site_for_control(self) -> SiteConfig:
        """The site with the plan step set to the simulation step."""
        return site_for_simulation(self.site, self.step_s, self.replan_s)

    @property
    def n_steps(self) -> int:
        """Simulated steps [-]."""
        return int(round((self.end_utc - self.start_utc).total_seconds() / self.step_s))


def site_for_simulation(site: SiteConfig, step_s: float, replan_s: float, horizon_h: float | None = None,
                        time_limit_s: float | None = None) -> SiteConfig:
    """``site`` with control timing set for the simulation (plan step = simulation step)."""
    update = {"plan_step_min": int(round(step_s / 60)), "replan_period_s": int(round(replan_s))}
    if horizon_h is not None:
        update["horizon_h"] = horizon_h
    if time_limit_s is not None:
        update["solver_time_limit_s"] = time_limit_s
    return site.model_copy(update={"control": site.control.model_copy(update=update)})


def _standalone_command(plant: BlockPlant, pv_kw: np.ndarray, load_kw: np.ndarray) -> PlantCommand:
    """Self-consumption rule per node, from last step's readings: store surplus, cover deficit."""
    cmd = plant.idle_command()
    return replace(cmd, battery_kw=np.where([s is not None for s in plant.battery_specs],
                                            load_kw - pv_kw, 0.0))


class _Controller:
    """Drives gridctl's controller core for one policy; keeps its state between cycles."""

    def __init__(self, scenario: Scenario, policy: Policy) -> None:
        days = FORESIGHT_WINDOW_DAYS
        if policy == "foresight":
            self.site = site_for_simulation(
                scenario.site, scenario.step_s, days * 86400.0,
                horizon_h=24.0 * (days + FORESIGHT_LOOKAHEAD_DAYS), time_limit_s=300.0)
            self.forecast, self.forecaster_name = truth_forecaster, "perfect foresight"
        else:
            self.site = site_for_simulation(scenario.site, scenario.step_s, scenario.replan_s)
            self.forecast, self.forecaster_name = rolling_forecaster, "gridctl.forecast"
        self.policy = policy
        self.outages = scenario.outages
        self.state = initial_state(scenario.start_utc)
        self.dispatcher = Dispatcher()
        self.replans: list[tuple[float, float, str]] = []  # (total_s, solver_s, status)
        self.fallback_decisions = 0
        #: Wall time per phase [s]: forecast, build (problem), solve, decide.
        self.phase_s = {"forecast": 0.0, "build": 0.0, "solve": 0.0, "decide": 0.0}

    def _known_windows(self, now: dt.datetime) -> tuple[WarnedWindow, ...]:
        known = []
        for w in self.outages:
            told = w.warning.total_seconds() > 0 and now >= w.warned_from_utc
            if (told or self.policy == "foresight") and now < w.end_utc:
                known.append(WarnedWindow(w.start_utc, w.end_utc, reason=w.spec or "warned"))
        return tuple(known)

    def cycle(self, now: dt.datetime, index: int, snapshot, history: History):
        """One control cycle; returns the Setpoints to write."""
        windows = self._known_windows(now)
        if windows != self.state.outage_windows:
            self.state = replace(self.state, outage_windows=windows)
        self.state = transition(self.site, self.state, snapshot, now).state
        clock = time.perf_counter
        if replan_due(self.site, self.state, now):
            t0 = clock()
            forecast = self.forecast(self.site, history, index, now)
            t1 = clock()
            problem = build_problem(self.site, self.state, snapshot, forecast, now)
            t2 = clock()
            plan = self.dispatcher.solve(problem)
            t3 = clock()
            self.phase_s["forecast"] += t1 - t0
            self.phase_s["build"] += t2 - t1
            self.phase_s["solve"] += t3 - t2
            self.replans.append((t3 - t0, plan.solver_time_s, plan.status.value))
            self.state = accept_plan(self.state, plan, plan_start_utc(self.site, now), now)
        t4 = clock()
        decision = decide(self.site, self.state, snapshot, now)
        self.phase_s["decide"] += clock() - t4
        self.fallback_decisions += int(decision.used_fallback)
        return decision.setpoints

    def update_billing(self, month_import_kwh: dict[str, float], peak_kw: dict[str, float]) -> None:
        """Month-to-date import and peak per node, as the daemon gets them from its meters."""
        self.state = replace(self.state, month_import_kwh=month_import_kwh, peak_import_kw=peak_kw)


class _Settler:
    """Settles each JST half-hour from the plant's cumulative counters into a ledger, as it goes.

    Every period goes through :class:`gridctl.ledger.SettlementBook`, the daemon's entry point:
    the month-to-date import that picks tiered prices is folded from the ledger. ``prior_kwh``
    (the import earlier in the start's month, estimated from the profiles) is recorded as the
    ledger's opening balance, so ``gridctl settle verify --config`` reproduces every period of
    a run that starts mid-month. ``settlements`` (the run's ``(readings, settlement)`` pairs)
    owns the ledger: ``ledger_path``, or a temporary file that
    :func:`sim.runner.outputs.write_ledger` moves into the output folder. The ledger is not
    fsynced (a run can be made again) and its entry times are simulated time.
    """

    def __init__(self, site: SiteConfig, bridge: Bridge, state: PlantState, start: dt.datetime,
                 prior_kwh: np.ndarray, ledger_path=None) -> None:
        from gridctl.ledger import SettlementBook
        from sim.runner.outputs import LedgerSettlements

        self.site, self.bridge = site, bridge
        self.period_start = start
        self.at_start = bridge.counters(state)
        now = self._now = [start]  # the ledger's clock; it must not hold the settler or the list
        self.settlements = LedgerSettlements(site.site.id, lambda: now[0], ledger_path)
        self.book = SettlementBook(site, self.settlements.ledger)
        if np.any(np.asarray(prior_kwh) > 0):
            self.book.record_opening_month_import(
                start, {n: Decimal(f"{v:.6f}") for n, v in zip(bridge.node_ids, prior_kwh)},
                source="simulation: max(load - pv, 0) of the profiles before the start")

    def maybe_settle(self, now: dt.datetime, state: PlantState) -> None:
        if (now - self.period_start).total_seconds() < 1800 - 1e-6:
            return
        at_end = self.bridge.counters(state)
        readings = period_readings(self.period_start, self.at_start, at_end)
        self._now[0] = now
        settlement, _ = self.book.settle(readings)
        self.settlements.append((readings, settlement))
        self.period_start, self.at_start = now, at_end


def _aligned_start(scenario: Scenario) -> None:
    local = scenario.start_utc.astimezone(JST)
    if local.minute % 30 or local.second or 1800 % scenario.step_s:
        raise ValueError("simulation start must lie on a JST half hour and the step divide 30 min")


def run_policy(scenario: Scenario, policy: Policy,
               progress: Callable[[int, int], None] | None = None) -> SimResult:
    """Simulate ``scenario`` under ``policy`` and return the recorded result."""
    _aligned_start(scenario)
    wall_start = time.perf_counter()
    plant = BlockPlant(scenario.site, p2p=policy != "standalone")
    bridge = Bridge(scenario.site, plant)
    profiles = scenario.profiles
    k0 = profiles.index_of(scenario.start_utc)
    if k0 + scenario.n_steps > len(profiles.times_utc):
        raise ValueError("profiles end before the simulated span")
    history = History(scenario.site_for_control, profiles, k0)
    starts = [scenario.start_utc + dt.timedelta(seconds=scenario.step_s * k)
              for k in range(scenario.n_steps)]
    out, _ = outage_masks(scenario.outages, starts, scenario.step_s, scenario.start_utc)
    state = plant.initial_state(scenario.initial_soc_pct)
    controller = None if policy == "standalone" else _Controller(scenario, policy)
    prior = _prior_month_import_kwh(profiles, k0, scenario.start_utc)
    settler = _Settler(scenario.site, bridge, state, scenario.start_utc, prior)
    recorder = Recorder(scenario, plant, policy, state, prior)
    last = _initial_readings(plant, profiles, k0)
    shed_now = np.zeros(len(plant.node_ids))
    served_only = 1.0 if scenario.load_reading == "served" else 0.0
    phases = {"plant": 0.0, "settle": 0.0}
    for k, now in enumerate(starts):
        index = k0 + k
        grid_ok = not out[k]
        pv, load = profiles.pv_kw[:, index], profiles.load_kw[:, index]
        pv_seen = np.minimum(pv, plant.pv_rated_kw)
        load_seen = load * (1.0 - (1.0 - plant.critical_share) * shed_now * served_only)
        if controller is None:
            cmd, tie_open = _standalone_command(plant, pv_seen, load_seen), False
        else:
            snapshot = bridge.snapshot(now, state, pv_seen, load_seen, last.grid_kw,
                                       last.battery_kw, last.link_flow_kw, grid_ok)
            history.record(snapshot)
            setpoints = controller.cycle(now, index, snapshot, history)
            cmd, tie_open = bridge.command(setpoints), setpoints.grid_tie_open
        shed_now = cmd.shed_fraction
        t0 = time.perf_counter()
        state, flows = plant.step(state, cmd, pv, load, grid_ok and not tie_open, scenario.step_s)
        t1 = time.perf_counter()
        recorder.record(k, flows, state, pv, load, grid_ok, controller)
        last = _as_readings(flows)
        settler.maybe_settle(now + dt.timedelta(seconds=scenario.step_s), state)
        phases["plant"] += t1 - t0
        phases["settle"] += time.perf_counter() - t1
        if controller is not None:
            controller.update_billing(*recorder.billing(k, now))
        if progress is not None:
            progress(k + 1, scenario.n_steps)
    result = recorder.result(state, settler.settlements, controller, time.perf_counter() - wall_start)
    result.phase_s = {**phases, **(controller.phase_s if controller else {})}
    return result


def _prior_month_import_kwh(profiles: ProfileSet, k0: int, start: dt.datetime) -> np.ndarray:
    """Grid import of each node earlier in the start's JST month [kWh], estimated from the
    profiles before the run as ``max(load - pv, 0)``, so tiered prices start at the right tier."""
    month_start = start.astimezone(JST).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = max(0, k0 - int(round((start - month_start).total_seconds() / profiles.step_s)))
    deficit = np.clip(profiles.load_kw[:, first:k0] - profiles.pv_kw[:, first:k0], 0, None)
    return deficit.sum(axis=1) * profiles.step_s / 3600.0


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
