"""Load forecast: the mean of recent same-weekday, same-time history, else a typical day.

``L[n, t] = mean_k L_hist[n, t - k weeks]`` for ``k = 1..WEEKS_BACK`` where recorded.  Where
no week has a record, a typical-day shape for the node's ``load.profile`` scaled to its
``annual_kwh`` fills in: ``L = annual_kwh / 8760 * shape(local hour)`` with the shape's daily
mean equal to 1, so a year of it sums to ``annual_kwh``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

from gridctl.config import Node, SiteConfig
from gridctl.forecast.history import MeasurementHistory

__all__ = ["TYPICAL_DAY", "forecast_load_kw", "typical_day_kw"]

#: Same-weekday samples looked back [weeks].
WEEKS_BACK = 4

#: Hourly shapes of a typical day by profile (local hours 0..23), any scale; normalised to a
#: daily mean of 1 below.  Rough public shapes: homes peak in the morning and evening, a
#: convenience store runs all day with refrigeration, a mall trades 10:00-21:00, an office works
#: 08:00-19:00.
_RAW_SHAPES = {
    "h25": [0.55, 0.45, 0.4, 0.4, 0.4, 0.5, 0.8, 1.2, 1.25, 1.0, 0.9, 0.9,
            0.95, 0.9, 0.85, 0.9, 1.05, 1.35, 1.7, 1.85, 1.8, 1.6, 1.2, 0.8],
    "convenience_store": [0.85, 0.8, 0.8, 0.8, 0.8, 0.85, 0.95, 1.05, 1.1, 1.1, 1.1, 1.15,
                          1.2, 1.2, 1.15, 1.1, 1.1, 1.1, 1.1, 1.05, 1.0, 0.95, 0.9, 0.85],
    "shopping_mall": [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.35, 0.5, 0.8, 1.3, 1.6, 1.7,
                      1.75, 1.75, 1.75, 1.7, 1.7, 1.7, 1.65, 1.6, 1.45, 0.9, 0.45, 0.35],
    "office": [0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.45, 0.8, 1.4, 1.7, 1.75, 1.75,
               1.6, 1.75, 1.75, 1.7, 1.6, 1.45, 1.1, 0.7, 0.5, 0.4, 0.35, 0.35],
}
#: Normalised hourly shapes [-], daily mean 1.
TYPICAL_DAY = {k: np.array(v) / np.mean(v) for k, v in _RAW_SHAPES.items()}


def typical_day_kw(node: Node, local_hours: np.ndarray) -> np.ndarray:
    """Typical-day load of ``node`` [kW] at fractional local hours ``local_hours`` (0 <= h < 24).

    Linear interpolation between hourly values taken at the middle of each hour, wrapping
    around midnight; the mean over a day is ``annual_kwh / 8760``.
    """
    shape = TYPICAL_DAY[node.load.profile]
    hours = np.asarray(local_hours, dtype=float) % 24.0
    grid = np.arange(26) - 0.5  # hour centres -0.5 .. 24.5, wrapping around midnight
    values = np.concatenate([shape[-1:], shape, shape[:1]])
    return node.load.annual_kwh / 8760.0 * np.interp(hours, grid, values)


def _hour_of_day(local: dt.datetime) -> float:
    return local.hour + local.minute / 60.0 + local.second / 3600.0


def forecast_load_kw(site: SiteConfig, history: MeasurementHistory, start_utc: dt.datetime,
                     step_s: float, n_steps: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Load forecast, step averages [kW], shape ``(N, n_steps)``, and notes.

    Parameters
    ----------
    site : SiteConfig
    history : MeasurementHistory
        Bins must equal the step (``history.bin_s == step_s``).
    start_utc : datetime
        Start of step 0, on a bin boundary.
    step_s : float
        Step length [s].
    n_steps : int
        Number of steps.
    """
    if abs(history.bin_s - step_s) > 1e-9:
        raise ValueError(f"forecast_load_kw.step_s: {step_s} s differs from the history bins "
                         f"({history.bin_s} s)")
    bins = history.bin_of(start_utc) + np.arange(n_steps)
    week = 7 * 86400 // history.bin_s
    rows = history.rows_for(n.id for n in site.nodes)
    samples = np.stack([history.values("load_kw", bins - k * week)[rows]
                        for k in range(1, WEEKS_BACK + 1)])
    have = np.isfinite(samples)
    count = have.sum(axis=0)
    total = np.where(have, samples, 0.0).sum(axis=0)
    tz = ZoneInfo(site.site.timezone)
    mid = [start_utc + dt.timedelta(seconds=step_s * (t + 0.5)) for t in range(n_steps)]
    local_h = np.array([_hour_of_day(m.astimezone(tz)) for m in mid])
    out = np.zeros((len(site.nodes), n_steps))
    notes = []
    for n, node in enumerate(site.nodes):
        fallback = typical_day_kw(node, local_h)
        out[n] = np.where(count[n] > 0, total[n] / np.maximum(count[n], 1), fallback)
        missing = int((count[n] == 0).sum())
        if missing:
            notes.append(f"node {node.id}: {missing} of {n_steps} steps from the typical "
                         f"'{node.load.profile}' day (no same-weekday history)")
    return np.maximum(out, 0.0), tuple(notes)
