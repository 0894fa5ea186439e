"""The forecast the daemon hands to the planner, fed with every snapshot.

:class:`HistoryForecaster` keeps the :mod:`gridctl.forecast` measurement history (PV and load
bin averages per node) and forecasts from it: PV from clear sky times the recent clear-sky
ratio, load from recent same-weekday history or a typical day while the history is short.
The daemon saves the last days of bin means into the ledger's state table every settlement
period (:meth:`HistoryForecaster.export`) and loads them at start (:meth:`restore`), so a
restart does not forget what the block has been doing.  The clear sky comes from a
:class:`~gridctl.daemon.stages.clearsky.ClearSkySource` (a table built in a child process), so
the daemon does not load pvlib and pandas.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.types import Forecast, Snapshot
from gridctl.daemon.stages.clearsky import ClearSkySource

#: Days of history saved across restarts [days] (a week covers each weekday once).
SAVED_DAYS = 7


class HistoryForecaster:
    """Measurement history plus :func:`gridctl.forecast.forecast_for`."""

    def __init__(self, site: SiteConfig, clear_sky: ClearSkySource | None = None) -> None:
        from gridctl import forecast

        self._forecast = forecast
        self.site = site
        self.history = forecast.new_history(site)
        #: Shared by the frozen copies: one table, renewed from the worker thread.
        self.clear_sky = clear_sky or ClearSkySource(site)

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
        table = self.clear_sky.table_for(now)
        return self._forecast.forecast_for(self.site, self.history, now, table)

    def export(self, days: float = SAVED_DAYS) -> str | None:
        """The last ``days`` [days] of bin means as compact JSON (None while empty).

        ``pv_kw`` and ``load_kw`` are lists per node of bin means [kW] from ``first_bin`` on;
        null where nothing was measured.
        """
        h = self.history
        latest = h.latest_bin()
        if latest is None:
            return None
        first = latest - int(days * 86400 // h.bin_s) + 1
        bins = np.arange(first, latest + 1)

        def rows(quantity: str) -> list[list[float | None]]:
            return [[None if math.isnan(v) else round(float(v), 3) for v in row]
                    for row in h.values(quantity, bins)]

        return json.dumps({"bin_s": h.bin_s, "node_ids": list(h.node_ids), "first_bin": first,
                           "pv_kw": rows("pv_kw"), "load_kw": rows("load_kw")},
                          separators=(",", ":"))

    def restore(self, text: str) -> int:
        """Load bin means saved by :meth:`export`; returns how many were loaded.

        Nodes no longer in the site are skipped; a different bin length raises ValueError.
        """
        data = json.loads(text)
        h = self.history
        if int(data["bin_s"]) != h.bin_s:
            raise ValueError(f"saved forecast history: bin_s {data['bin_s']} differs from {h.bin_s}")
        first, loaded, known = int(data["first_bin"]), 0, set(h.node_ids)
        for quantity in ("pv_kw", "load_kw"):
            for node_id, row in zip(data["node_ids"], data[quantity], strict=True):
                if node_id not in known:
                    continue
                for i, value in enumerate(row):
                    if value is None:
                        continue
                    at = h.bin_start(first + i) + dt.timedelta(seconds=h.bin_s / 2)
                    h.add(at, node_id, **{quantity: float(value)})
                    loaded += 1
        return loaded
