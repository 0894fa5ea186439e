"""Forecasting: pure functions of an injected measurement history; no clock, file or socket.

* :class:`MeasurementHistory` -- ring buffer of per-node PV and load bin averages, fed by the
  daemon and the simulator with every snapshot.
* :func:`make_forecast` -- PV (pvlib clear sky x recent clear-sky ratio) and load (recent
  same-weekday history, else a typical day) over the plan horizon, as a
  :class:`gridctl.controller.Forecast`.
"""

from __future__ import annotations

import datetime as dt

from gridctl.config import SiteConfig
from gridctl.controller.problem import horizon_steps, plan_start_utc
from gridctl.controller.types import Forecast
from gridctl.forecast.history import MeasurementHistory
from gridctl.forecast.load import forecast_load_kw, typical_day_kw
from gridctl.forecast.pv import ClearSkyTable, clear_sky_pv_kw, clear_sky_ratio, forecast_pv_kw

__all__ = [
    "ClearSkyTable",
    "MeasurementHistory",
    "clear_sky_pv_kw",
    "clear_sky_ratio",
    "forecast_for",
    "forecast_load_kw",
    "forecast_pv_kw",
    "make_forecast",
    "new_history",
    "typical_day_kw",
]


def make_forecast(site: SiteConfig, history: MeasurementHistory, start_utc: dt.datetime,
                  step_s: float, n_steps: int, clear_sky: ClearSkyTable | None = None) -> Forecast:
    """PV and load forecast per node for ``n_steps`` steps of ``step_s`` [s] from ``start_utc``.

    ``clear_sky`` (optional) is a precomputed :class:`ClearSkyTable`, e.g. for a whole
    simulated year; the result is the same with or without it.
    """
    pv_kw, pv_notes = forecast_pv_kw(site, history, start_utc, step_s, n_steps, clear_sky)
    load_kw, load_notes = forecast_load_kw(site, history, start_utc, step_s, n_steps)
    return Forecast(start_utc=start_utc, step_s=step_s, node_ids=tuple(n.id for n in site.nodes),
                    pv_kw=pv_kw, load_kw=load_kw, notes=pv_notes + load_notes)


def forecast_for(site: SiteConfig, history: MeasurementHistory, now: dt.datetime,
                 clear_sky: ClearSkyTable | None = None) -> Forecast:
    """The forecast over the configured horizon from the plan step holding ``now``."""
    return make_forecast(site, history, plan_start_utc(site, now),
                         float(site.control.plan_step_min * 60), horizon_steps(site), clear_sky)


def new_history(site: SiteConfig, days: float = 28.0) -> MeasurementHistory:
    """An empty history for ``site`` with bins of one plan step."""
    return MeasurementHistory((n.id for n in site.nodes), site.control.plan_step_min * 60, days)
