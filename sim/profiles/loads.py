"""Load profiles: BDEW H25 for homes (demandlib), daily shapes for shops and the mall, BDEW G25
for offices; scaled to each node's annual kWh, with seeded multiplicative noise.

Homes use the 2025 BDEW household profile H25 (dynamic, 15-minute, holidays as Sundays; the
Japanese holiday calendar comes from ``holidays``). H25 integrates to 1 GWh per year, so it
is scaled by ``annual_kwh / 1e6``. The convenience store (24 h, refrigeration base) and the
shopping mall (open 10:00-21:00, air conditioning) use hourly shapes and monthly factors
below ([?] defaults drawn from typical Japanese commercial load curves); each is normalised
over a whole year so that a year of it integrates to ``annual_kwh``.

Noise: per day a factor ``exp(s_d e - s_d^2/2)`` and per step an AR(1) factor with the same
mean of one, so the expected energy is unchanged; homes are noisier than shops.
"""

from __future__ import annotations

import datetime as dt
import functools

import holidays
import numpy as np
import pandas as pd
from demandlib import bdew

from sim.profiles.profileset import node_seed

__all__ = ["load_kw_15min"]

_LOAD_STREAM = 2
#: Relative load per local hour [-], normalised later.
_SHAPES = {
    "convenience_store": np.array(
        [0.78, 0.75, 0.73, 0.72, 0.72, 0.76, 0.85, 0.95, 1.02, 1.05, 1.08, 1.12,
         1.18, 1.15, 1.12, 1.10, 1.10, 1.12, 1.14, 1.10, 1.04, 0.96, 0.88, 0.82]),
    "shopping_mall": np.array(
        [0.22, 0.21, 0.21, 0.21, 0.21, 0.22, 0.26, 0.40, 0.75, 1.30, 1.62, 1.70,
         1.74, 1.75, 1.75, 1.72, 1.68, 1.62, 1.55, 1.48, 1.35, 0.80, 0.35, 0.25]),
}
#: Relative load per month [-] (cooling peak in August, heating in January).
_MONTHLY = {
    "convenience_store": np.array([1.02, 1.0, 0.95, 0.92, 0.95, 1.02, 1.12, 1.16, 1.06, 0.95, 0.93, 0.98]),
    "shopping_mall": np.array([1.00, 0.97, 0.92, 0.88, 0.94, 1.05, 1.20, 1.25, 1.10, 0.92, 0.90, 0.97]),
}
#: Weekend and holiday factor [-] (shops busier, the mall much busier).
_WEEKEND = {"convenience_store": 1.03, "shopping_mall": 1.18}
#: Sigma of the daily and of the per-step log-noise [-].
_NOISE = {"h25": (0.12, 0.30), "office": (0.06, 0.10), "convenience_store": (0.05, 0.06),
          "shopping_mall": (0.05, 0.07)}


@functools.lru_cache(maxsize=8)
def _jp_holidays(first_year: int, last_year: int) -> tuple[dt.date, ...]:
    return tuple(holidays.country_holidays("JP", years=range(first_year, last_year + 1)).keys())


def _off_day(local_dates: pd.DatetimeIndex) -> np.ndarray:
    hol = set(_jp_holidays(local_dates.year.min(), local_dates.year.max()))
    return np.array([d.weekday() >= 5 or d.date() in hol for d in local_dates])


def _shape_kw(kind: str, idx: pd.DatetimeIndex) -> np.ndarray:
    """Unscaled shape value per local 15-minute step."""
    base = _SHAPES[kind][idx.hour] * _MONTHLY[kind][idx.month - 1]
    return base * np.where(_off_day(idx.normalize()), _WEEKEND[kind], 1.0)


@functools.lru_cache(maxsize=16)
def _shape_annual_kwh(kind: str, year: int) -> float:
    idx = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="15min", inclusive="left")
    return float(_shape_kw(kind, idx).sum() * 0.25)


def _standard_kw(kind: str, idx: pd.DatetimeIndex, annual_kwh: float) -> np.ndarray:
    """Noise-free load [kW] on a local naive 15-minute index with a set ``freq``."""
    years = range(idx.year.min(), idx.year.max() + 1)
    if kind in ("h25", "office"):
        hol = [d for d in _jp_holidays(min(years), max(years))]
        profile = bdew.H25(idx, holidays=hol) if kind == "h25" else bdew.G25(idx, holidays=hol)
        return profile.to_numpy(dtype=float) * annual_kwh / 1e6
    norm = np.array([_shape_annual_kwh(kind, y) for y in idx.year])
    return _shape_kw(kind, idx) * annual_kwh / norm


def _noise(kind: str, node_id: str, seed: int, idx: pd.DatetimeIndex) -> np.ndarray:
    sigma_day, sigma_step = _NOISE[kind]
    days = idx.normalize()
    out = np.empty(len(idx))
    for day in days.unique():
        mask = np.asarray(days == day)
        rng = node_seed(seed, node_id, _LOAD_STREAM, day.toordinal())
        day_factor = np.exp(sigma_day * rng.standard_normal() - sigma_day**2 / 2)
        e = rng.standard_normal(int(mask.sum()))
        x = np.empty_like(e)
        level = 0.0
        for i, value in enumerate(e):
            level = 0.6 * level + 0.8 * value  # stationary variance 1
            x[i] = level
        out[mask] = day_factor * np.exp(sigma_step * x - sigma_step**2 / 2)
    return out


def load_kw_15min(kind: str, annual_kwh: float, node_id: str, seed: int,
                  idx_local: pd.DatetimeIndex) -> np.ndarray:
    """Load [kW] per local 15-minute step of ``idx_local`` (naive local times, freq 15min).

    Parameters
    ----------
    kind : str
        ``h25``, ``office``, ``convenience_store`` or ``shopping_mall``.
    annual_kwh : float
        Yearly consumption [kWh] the noise-free profile integrates to.
    node_id : str
        Node name, part of the noise seed.
    seed : int
        Scenario seed; None-free and deterministic.
    idx_local : DatetimeIndex
        Naive local 15-minute step starts from a local midnight.
    """
    return _standard_kw(kind, idx_local, annual_kwh) * _noise(kind, node_id, seed, idx_local)
