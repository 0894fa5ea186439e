"""PV power from pvlib: clear-sky irradiance at the site, a seeded stochastic cloud model,
transposition to each array's plane, cell temperature, PVWatts DC and inverter models.

Cloud model (all draws seeded per day, so a day's weather does not depend on the span):

* daily clear-sky index ``kc_day``: a latent normal ``z_d = 0.6 e_d + 0.8 e_{d-1}`` (moving
  average, so weather persists from one day to the next) mapped through its CDF onto a
  monthly climatology (probability of clear and of overcast days in Kanto, [?] defaults);
* intra-day: an AR(1) process on 15-minute steps, ``x_t = 0.75 x_{t-1} + e_t``, with an
  amplitude ``0.9 kc (1 - kc)`` that vanishes on clear and on overcast days and is largest on
  broken-cloud days;
* ``GHI = kc_t GHI_clear`` is split into beam and diffuse with the Erbs model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

from sim.profiles.profileset import node_seed

__all__ = ["ArraySpec", "clear_sky_index", "pv_ac_kw"]

#: Share of clear and of overcast days per month in Kanto [-] ([?] climatology defaults:
#: sunny dry winters, the June-July rainy season, typhoon-season September).
_P_CLEAR = np.array([0.60, 0.55, 0.45, 0.40, 0.40, 0.22, 0.30, 0.45, 0.30, 0.35, 0.50, 0.60])
_P_OVERCAST = np.array([0.12, 0.15, 0.22, 0.22, 0.22, 0.40, 0.32, 0.18, 0.35, 0.28, 0.18, 0.12])
#: Mean daily air temperature in Saitama per month [degC] (for cell temperature).
_AIR_C = np.array([4.0, 5.0, 8.5, 14.0, 19.0, 22.5, 26.5, 28.0, 24.0, 18.0, 12.0, 6.5])
_WEATHER_STREAM = 1
_STEP_15MIN_S = 900.0


@dataclass(frozen=True)
class ArraySpec:
    """One PV array and its inverter.

    Parameters
    ----------
    dc_kwp : float
        Array peak power at STC [kWp].
    ac_kw : float
        Inverter AC rating [kW].
    tilt_deg, azimuth_deg : float
        Plane orientation [deg]; azimuth 180 = south.
    """

    dc_kwp: float
    ac_kw: float
    tilt_deg: float
    azimuth_deg: float


def _daily_index(seed: int, day: int, month: int) -> float:
    latent = (0.6 * node_seed(seed, "weather", _WEATHER_STREAM, day).standard_normal()
              + 0.8 * node_seed(seed, "weather", _WEATHER_STREAM, day - 1).standard_normal())
    u = 0.5 * (1.0 + math.erf(latent / math.sqrt(2.0)))
    p_over, p_clear = _P_OVERCAST[month - 1], _P_CLEAR[month - 1]
    return float(np.interp(u, [0.0, p_over, 1.0 - p_clear, 1.0 - 0.5 * p_clear, 1.0],
                           [0.10, 0.35, 0.80, 0.95, 1.0]))


def clear_sky_index(times_local: pd.DatetimeIndex, seed: int) -> np.ndarray:
    """Clear-sky index per 15-minute step [-], in [0.05, 1.1] (cloud edges may enhance).

    ``times_local`` must be a 15-minute grid in site-local time starting at local midnight.
    """
    days = times_local.normalize()
    out = np.empty(len(times_local))
    for day in days.unique():
        mask = days == day
        ordinal = day.toordinal()
        kc_day = _daily_index(seed, ordinal, day.month)
        noise = node_seed(seed, "weather", _WEATHER_STREAM + 1, ordinal).standard_normal(mask.sum())
        ar = np.empty_like(noise)
        level = 0.0
        for i, e in enumerate(noise):
            level = 0.75 * level + math.sqrt(1 - 0.75**2) * e
            ar[i] = level
        out[mask] = np.clip(kc_day + 0.9 * kc_day * (1.0 - kc_day) * ar, 0.05, 1.1)
    return out


def pv_ac_kw(
    location: pvlib.location.Location, times_utc: pd.DatetimeIndex, arrays: list[ArraySpec],
    kc: np.ndarray | None,
) -> np.ndarray:
    """AC power available from ``arrays`` [kW], summed, at the middle of each 15-minute step.

    Parameters
    ----------
    location : pvlib Location
        Site position and time zone.
    times_utc : DatetimeIndex
        15-minute step starts, tz UTC.
    arrays : list of ArraySpec
        The node's arrays; an empty list gives zeros.
    kc : ndarray or None
        Clear-sky index per step [-]; None means a clear sky throughout.

    Returns
    -------
    ndarray, shape (T,)
        Step-average available AC power [kW], >= 0.
    """
    total = np.zeros(len(times_utc))
    if not arrays:
        return total
    mid = times_utc + pd.Timedelta(seconds=_STEP_15MIN_S / 2)
    clear = location.get_clearsky(mid, model="ineichen")
    sun = location.get_solarposition(mid)
    ghi = clear["ghi"].to_numpy() * (1.0 if kc is None else kc)
    split = pvlib.irradiance.erbs(ghi, sun["apparent_zenith"].to_numpy(), mid)
    if kc is None:  # a clear sky keeps the clear-sky model's own beam/diffuse split
        dni, dhi = clear["dni"].to_numpy(), clear["dhi"].to_numpy()
    else:
        dni, dhi = np.asarray(split["dni"]), np.asarray(split["dhi"])
    air_c = _AIR_C[mid.tz_convert(location.tz).month.to_numpy() - 1]
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"]
    for arr in arrays:
        poa = pvlib.irradiance.get_total_irradiance(
            arr.tilt_deg, arr.azimuth_deg, sun["apparent_zenith"].to_numpy(),
            sun["azimuth"].to_numpy(), dni, ghi, dhi)["poa_global"]
        poa = np.nan_to_num(np.asarray(poa, dtype=float), nan=0.0).clip(min=0.0)
        cell_c = pvlib.temperature.sapm_cell(poa, air_c, 1.0, **params)
        dc_kw = pvlib.pvsystem.pvwatts_dc(poa, cell_c, arr.dc_kwp, -0.0037)
        ac_kw = pvlib.inverter.pvwatts(np.asarray(dc_kw) * 0.97, arr.ac_kw / 0.96)  # 3 % DC losses
        total += np.clip(np.nan_to_num(np.asarray(ac_kw, dtype=float)), 0.0, arr.ac_kw)
    return total
