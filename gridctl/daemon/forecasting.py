"""The forecast the daemon hands to the planner, fed with every snapshot.

:class:`HistoryForecaster` keeps the :mod:`gridctl.forecast` measurement history (PV and load
bin averages per node) and forecasts from it: PV from clear sky times the recent clear-sky
ratio, load from recent same-weekday history or a typical day while the history is short.
The history lives in memory: after a restart the forecast starts again from typical days.
"""

from __future__ import annotations

import copy
import datetime as dt

from gridctl.config import SiteConfig
from gridctl.controller.types import Forecast, Snapshot


class HistoryForecaster:
    """Measurement history plus :func:`gridctl.forecast.forecast_for`."""

    def __init__(self, site: SiteConfig) -> None:
        from gridctl import forecast

        self._forecast = forecast
        self.site = site
        self.history = forecast.new_history(site)

    def observe(self, snapshot: Snapshot) -> None:
        """Add one snapshot's PV and load readings to the history."""
        self.history.add_snapshot(snapshot)

    def frozen(self) -> HistoryForecaster:
        """A copy whose history no longer changes (for a forecast made in the worker thread)."""
        twin = copy.copy(self)
        twin.history = copy.deepcopy(self.history)
        return twin

    def forecast(self, now: dt.datetime) -> Forecast:
        """PV and load per node over the plan horizon starting at the step holding ``now``."""
        return self._forecast.forecast_for(self.site, self.history, now)
