"""Forecasts for the simulated controller: gridctl's own forecaster fed with simulated history,
or the truth (for the perfect-foresight baseline).

The rolling controller must not see the future: its :class:`gridctl.forecast.MeasurementHistory`
receives only the readings of each control cycle, exactly as the daemon feeds it. Steps before
the simulated span come from the profiles (what the meters recorded before the run began).
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from gridctl.config import SiteConfig
from gridctl.controller.types import Forecast, Snapshot
from gridctl.forecast import ClearSkyTable, forecast_for, new_history
from sim.profiles import ProfileSet

__all__ = ["Forecaster", "History", "rolling_forecaster", "truth_forecaster"]

#: Days of measured history kept (the load forecast looks back four same weekdays).
HISTORY_DAYS = 28


class History:
    """The profiles (truth) and the measurement history the controller has seen so far."""

    def __init__(self, site: SiteConfig, profiles: ProfileSet, first_sim_index: int) -> None:
        self.profiles = profiles
        self.measured = new_history(site, days=HISTORY_DAYS)
        # The clear sky of the whole span, once: the forecast is the same, and much cheaper.
        self.clear_sky = ClearSkyTable.build(
            site, profiles.start_utc - dt.timedelta(days=1),
            profiles.end_utc + dt.timedelta(hours=site.control.horizon_h + 24),
            int(site.control.plan_step_min * 60))
        for k in range(first_sim_index):
            at = profiles.times_utc[k].to_pydatetime()
            for i, node_id in enumerate(profiles.node_ids):
                self.measured.add(at, node_id, float(profiles.pv_kw[i, k]), float(profiles.load_kw[i, k]))

    def record(self, snapshot: Snapshot) -> None:
        """Feed one control cycle's readings, as the daemon does."""
        self.measured.add_snapshot(snapshot)


#: ``(site, history, profile_index_now, now) -> Forecast``
Forecaster = Callable[[SiteConfig, History, int, dt.datetime], Forecast]


def rolling_forecaster(site: SiteConfig, history: History, index: int, now: dt.datetime) -> Forecast:
    """gridctl's forecaster over the configured horizon, from the measured history only."""
    return forecast_for(site, history.measured, now, history.clear_sky)


def truth_forecaster(site: SiteConfig, history: History, index: int, now: dt.datetime) -> Forecast:
    """The profiles themselves from the step holding ``now`` (perfect foresight), cut at their end."""
    p = history.profiles
    n_steps = int(round(site.control.horizon_h * 3600 / p.step_s))
    stop = min(index + n_steps, len(p.times_utc))
    pv, load = p.window(index, stop)
    return Forecast(start_utc=p.times_utc[index].to_pydatetime(), step_s=p.step_s,
                    node_ids=p.node_ids, pv_kw=pv, load_kw=load, notes=("perfect foresight",))
