"""Synthetic profiles for a whole site: pvlib PV with seeded clouds, standard loads with noise."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd
import pvlib

from gridctl.config import SiteConfig
from sim.profiles.loads import load_kw_15min
from sim.profiles.profileset import ProfileError, ProfileSet, time_grid
from sim.profiles.solar import ArraySpec, clear_sky_index, pv_ac_kw

__all__ = ["synthetic_profiles", "to_step"]

_BASE_S = 900.0


def to_step(values_15min: np.ndarray, step_s: float) -> np.ndarray:
    """Re-grid step averages from 15 minutes to ``step_s`` [s] (a divisor or multiple of 900 s).

    Finer steps repeat the 15-minute value; coarser steps average whole 15-minute blocks,
    so energy is preserved exactly.
    """
    if step_s == _BASE_S:
        return values_15min
    if _BASE_S % step_s == 0:
        return np.repeat(values_15min, int(_BASE_S // step_s), axis=-1)
    if step_s % _BASE_S == 0:
        k = int(step_s // _BASE_S)
        trimmed = values_15min[..., : values_15min.shape[-1] // k * k]
        return trimmed.reshape(*trimmed.shape[:-1], -1, k).mean(axis=-1)
    raise ProfileError(f"step {step_s:g} s: must divide or be a multiple of 15 minutes")


def synthetic_profiles(
    site: SiteConfig, start_utc: dt.datetime, end_utc: dt.datetime, step_s: float, seed: int,
    sky: Literal["stochastic", "clear"] = "stochastic",
) -> ProfileSet:
    """PV available and load for every node over ``[start_utc, end_utc)``.

    Parameters
    ----------
    site : SiteConfig
        Location, time zone, each node's arrays and load spec.
    start_utc, end_utc : datetime
        Span, tz-aware; ``start_utc`` on a 15-minute boundary.
    step_s : float
        Output step [s]; divides 900 or is a multiple of 900.
    seed : int
        Scenario seed: same seed, same profiles.
    sky : {"stochastic", "clear"}
        Seeded cloud model, or a clear sky every day (for "sunny" test cases).
    """
    tz = site.site.timezone
    first_local = pd.Timestamp(start_utc).tz_convert(tz).normalize()
    last_local = pd.Timestamp(end_utc).tz_convert(tz).normalize() + pd.Timedelta(days=1)
    idx_local = pd.date_range(first_local.tz_localize(None), last_local.tz_localize(None),
                              freq="15min", inclusive="left")
    idx_utc = idx_local.tz_localize(tz).tz_convert("UTC")
    location = pvlib.location.Location(site.site.latitude_deg, site.site.longitude_deg, tz,
                                       site.site.altitude_m)
    kc = None if sky == "clear" else clear_sky_index(idx_local, seed)
    pv_rows, load_rows = [], []
    for node in site.nodes:
        arrays = [ArraySpec(d.rating.dc_kwp, d.rating.ac_kw, d.rating.tilt_deg, d.rating.azimuth_deg)
                  for d in node.pv_inverters]
        pv_rows.append(pv_ac_kw(location, idx_utc, arrays, kc))
        load_rows.append(load_kw_15min(node.load.profile, node.load.annual_kwh, node.id, seed,
                                       idx_local))
    keep = (idx_utc >= pd.Timestamp(start_utc)) & (idx_utc < pd.Timestamp(end_utc))
    first = int(np.argmax(keep))
    if abs((idx_utc[first] - pd.Timestamp(start_utc)).total_seconds()) > 0:
        raise ProfileError(f"start {start_utc:%Y-%m-%dT%H:%M}Z: must lie on a 15-minute boundary")
    pv = to_step(np.vstack(pv_rows)[:, keep], step_s)
    load = to_step(np.vstack(load_rows)[:, keep], step_s)
    times = time_grid(start_utc, end_utc, step_s)
    return ProfileSet(times_utc=times, step_s=step_s, node_ids=tuple(n.id for n in site.nodes),
                      pv_kw=pv[:, : len(times)], load_kw=load[:, : len(times)],
                      source=f"synthetic seed={seed} sky={sky}")
