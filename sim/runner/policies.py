"""The policies a simulation compares, each turning one step's readings into plant commands.

* ``rolling``: gridctl's controller, driven by :func:`gridctl.controller.run_cycle` exactly as
  the daemon drives it, with gridctl's forecaster fed only the readings so far;
* ``foresight``: the same controller fed the true profiles, re-planning once per window over
  the window plus a day (a bound on what better forecasts could give);
* ``standalone``: each node's own self-consumption rule, no links, no controller.

Every policy keeps the same outage reserve: the controller as a soft block-wide requirement,
the stand-alone rule as a floor on each battery (its share of the block reserve by capacity),
so that a policy does not look cheaper only by keeping less in store.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller import (
    FinishedPlan,
    OutageWindow as WarnedWindow,
    PlanRequest,
    build_problem,
    initial_state,
    opening_billing,
    run_cycle,
)
from gridctl.controller.types import ControllerState, Setpoints, Snapshot
from optimizer.dispatcher import Dispatcher
from sim.outages import OutageWindow
from sim.plant.block import BlockPlant, PlantCommand
from sim.profiles import ProfileSet
from sim.runner.forecasting import Forecaster, History, rolling_forecaster, truth_forecaster

__all__ = ["ControllerPolicy", "StandalonePolicy", "prior_billing", "reserve_floor_kwh"]

#: Perfect-foresight window and look-ahead [days].
FORESIGHT_WINDOW_DAYS = 7
FORESIGHT_LOOKAHEAD_DAYS = 1


def site_for_simulation(site: SiteConfig, step_s: float, replan_s: float, horizon_h: float | None = None,
                        time_limit_s: float | None = None, peak_margin_pct: float | None = None,
                        ) -> SiteConfig:
    """``site`` with control timing set for the simulation (plan step = simulation step)."""
    update = {"plan_step_min": int(round(step_s / 60)), "replan_period_s": int(round(replan_s))}
    if horizon_h is not None:
        update["horizon_h"] = horizon_h
    if time_limit_s is not None:
        update["solver_time_limit_s"] = time_limit_s
    if peak_margin_pct is not None:
        update["peak_margin_pct"] = peak_margin_pct
    return site.model_copy(update={"control": site.control.model_copy(update=update)})


def prior_billing(site: SiteConfig, profiles: ProfileSet, k0: int, start: dt.datetime):
    """The billing context at the start, from the profiles before it (what the meters saw
    before the run): import earlier in the month, and the contracted demand as the highest
    30-minute average of ``max(load - pv, 0)`` over the history [kWh], [kW]."""
    deficit = np.clip(profiles.load_kw[:, :k0] - profiles.pv_kw[:, :k0], 0, None)
    local = start.astimezone(ZoneInfo(site.site.timezone))
    first_of_month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = max(0, k0 - int(round((start - first_of_month).total_seconds() / profiles.step_s)))
    month_kwh = deficit[:, first:k0].sum(axis=1) * profiles.step_s / 3600.0
    per_period = max(1, int(round(1800.0 / profiles.step_s)))
    usable = (deficit.shape[1] // per_period) * per_period
    tail = deficit[:, deficit.shape[1] - usable:]
    averages = tail.reshape(len(profiles.node_ids), -1, per_period).mean(axis=2)
    peaks = averages.max(axis=1) if averages.size else np.zeros(len(profiles.node_ids))
    ids = profiles.node_ids
    return opening_billing(site, start, dict(zip(ids, month_kwh.tolist())),
                           dict(zip(ids, peaks.tolist()))), month_kwh


def reserve_floor_kwh(site: SiteConfig, plant: BlockPlant, profiles: ProfileSet) -> np.ndarray:
    """Each battery's share of the block reserve, by capacity [kWh] (at least its minimum).

    The block reserve is ``islanding.reserve_hours_h`` of the block's mean critical load over
    the profiles, as the controller keeps it, capped at the block's storage.
    """
    specs = plant.battery_specs
    cap = np.array([0.0 if s is None else s.capacity_kwh * s.soc_max_pct / 100 for s in specs])
    low = np.array([0.0 if s is None else s.capacity_kwh * s.soc_min_pct / 100 for s in specs])
    critical_kw = float((profiles.load_kw * plant.critical_share[:, None]).sum(axis=0).mean())
    reserve = min(site.islanding.reserve_hours_h * critical_kw, float(cap.sum()))
    share = reserve * cap / cap.sum() if cap.sum() > 0 else np.zeros_like(cap)
    return np.minimum(np.maximum(low, share), cap)


class StandalonePolicy:
    """Self-consumption per node from this step's readings: store surplus, cover deficit, keep
    the battery's reserve share."""

    name = "standalone"
    forecaster_name = ""

    def __init__(self, plant: BlockPlant, floor_kwh: np.ndarray) -> None:
        self.plant, self.floor_kwh = plant, floor_kwh
        self.state: ControllerState | None = None
        self.replans: list = []
        self.fallback_decisions = 0
        self.phase_s: dict[str, float] = {}

    def command(self, pv_kw: np.ndarray, load_kw: np.ndarray, stored_kwh: np.ndarray,
                dt_s: float) -> PlantCommand:
        hours = dt_s / 3600.0
        specs = self.plant.battery_specs
        wish = load_kw - pv_kw
        limit = np.array([0.0 if s is None else max(stored - floor, 0.0) * s.discharge_efficiency / hours
                          for s, stored, floor in zip(specs, stored_kwh, self.floor_kwh)])
        battery = np.where(wish > 0, np.minimum(wish, limit), wish)
        battery = np.where([s is not None for s in specs], battery, 0.0)
        return replace(self.plant.idle_command(), battery_kw=battery)


class _SyncPlanner:
    """The simulator's planner: forecast, build and solve at once when asked."""

    def __init__(self, policy: ControllerPolicy) -> None:
        self.policy = policy
        self._done: FinishedPlan | None = None

    def submit(self, request: PlanRequest) -> bool:
        self._done = FinishedPlan(request, self.policy.solve(request))
        return True

    def poll(self) -> FinishedPlan | None:
        done, self._done = self._done, None
        return done


@dataclass
class _Clock:
    index: int = 0


class ControllerPolicy:
    """gridctl's controller (``rolling``) or the same with true forecasts (``foresight``)."""

    def __init__(self, site: SiteConfig, policy: str, step_s: float, replan_s: float,
                 outages: tuple[OutageWindow, ...], start: dt.datetime, billing) -> None:
        if policy == "foresight":
            days = FORESIGHT_WINDOW_DAYS
            # true forecasts need no margin against forecast error
            self.site = site_for_simulation(site, step_s, days * 86400.0,
                                            horizon_h=24.0 * (days + FORESIGHT_LOOKAHEAD_DAYS),
                                            time_limit_s=300.0, peak_margin_pct=0.0)
            self.forecast: Forecaster = truth_forecaster
            self.forecaster_name = "perfect foresight"
        else:
            self.site = site_for_simulation(site, step_s, replan_s)
            self.forecast, self.forecaster_name = rolling_forecaster, "gridctl.forecast"
        self.name, self.outages = policy, outages
        self.state = initial_state(start, billing=billing)
        self.dispatcher = Dispatcher()
        self.planner = _SyncPlanner(self)
        self.clock = _Clock()
        self.history: History | None = None
        self.replans: list[tuple[float, float, str]] = []  # (total_s, solver_s, status)
        self.fallback_decisions = 0
        #: Wall time per phase [s]: forecast, build (problem), solve, decide.
        self.phase_s = {"forecast": 0.0, "build": 0.0, "solve": 0.0, "decide": 0.0}

    def _known_windows(self, now: dt.datetime) -> tuple[WarnedWindow, ...]:
        known = []
        for w in self.outages:
            told = w.warning.total_seconds() > 0 and now >= w.warned_from_utc
            if (told or self.name == "foresight") and now < w.end_utc:
                known.append(WarnedWindow(w.start_utc, w.end_utc, reason=w.spec or "warned"))
        return tuple(known)

    def solve(self, request: PlanRequest):
        """Forecast, problem and plan for ``request`` (timed per phase)."""
        clock = time.perf_counter
        t0 = clock()
        forecast = self.forecast(self.site, self.history, self.clock.index, request.now)
        t1 = clock()
        problem = build_problem(self.site, request.state, request.snapshot, forecast, request.now)
        t2 = clock()
        plan = self.dispatcher.solve(problem)
        t3 = clock()
        self.phase_s["forecast"] += t1 - t0
        self.phase_s["build"] += t2 - t1
        self.phase_s["solve"] += t3 - t2
        self.replans.append((t3 - t0, plan.solver_time_s, plan.status.value))
        return plan

    def cycle(self, now: dt.datetime, index: int, snapshot: Snapshot, history: History) -> Setpoints:
        """One control cycle through the shared loop; returns the setpoints to write."""
        windows = self._known_windows(now)
        if windows != self.state.outage_windows:
            self.state = replace(self.state, outage_windows=windows, replan_wanted=True)
        self.clock.index, self.history = index, history
        t0, planned = time.perf_counter(), sum(self.phase_s[k] for k in ("forecast", "build", "solve"))
        result = run_cycle(self.site, self.state, snapshot, now, self.planner)
        planned = sum(self.phase_s[k] for k in ("forecast", "build", "solve")) - planned
        self.phase_s["decide"] += time.perf_counter() - t0 - planned
        self.state = result.state
        self.fallback_decisions += int(result.decision.used_fallback)
        return result.decision.setpoints
