"""PV forecast: pvlib clear-sky power of each array, scaled by recently measured output.

``P_fc[n, t] = P_cs[n, t] * r_n(t)`` with the clear-sky power ``P_cs`` of the node's arrays
(tilt, azimuth, kWp, clipped at the inverter AC rating) and the clear-sky index
``r_n(t) = r_0 + (r_recent - r_0) * exp(-lead_h(t) / tau_h)``: the ratio of measured to
clear-sky output over the last hours, relaxing towards a typical ratio ``r_0`` as the lead
time grows (cloud persistence fades within hours).

The clear-sky model is Solis (simplified), which needs no data files, so the functions here
stay pure computation.  pandas and pvlib are imported where the clear sky is computed, not with
the module: the daemon takes its :class:`ClearSkyTable` from a child process
(:mod:`gridctl.daemon.stages.clearsky`) and so never loads them (about 120 MB).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gridctl.config import SiteConfig
from gridctl.forecast.history import MeasurementHistory

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClearSkyTable", "clear_sky_pv_kw", "clear_sky_ratio", "forecast_pv_kw"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

#: DC-to-AC losses besides clipping (wiring, soiling, temperature, inverter) [-].
SYSTEM_LOSS = 0.14
#: Typical ratio of measured to clear-sky output when nothing recent says otherwise [-].
TYPICAL_RATIO = 0.75
#: Time constant of the relaxation of the recent ratio towards the typical one [h].
RATIO_TAU_H = 3.0
#: Bins looked back for the recent ratio [-] (with 15-minute bins: two hours).
RECENT_BINS = 8
#: A bin counts as daylight for the ratio when clear-sky output exceeds this share of AC rating.
_DAYLIGHT_SHARE = 0.1
#: Highest believable clear-sky index (cloud-edge enhancement, model error) [-].
_MAX_RATIO = 1.3


def clear_sky_pv_kw(site: SiteConfig, times_utc: pd.DatetimeIndex) -> np.ndarray:
    """Clear-sky AC power of each node's PV at ``times_utc`` [kW], shape ``(N, len(times))``.

    Parameters
    ----------
    site : SiteConfig
        Location (latitude, longitude, altitude) and each inverter's array (``dc_kwp``,
        ``tilt_deg``, ``azimuth_deg``: 180 = south) and AC rating ``ac_kw``.
    times_utc : DatetimeIndex
        Tz-aware instants (use step mid-points for step averages).
    """
    import pvlib

    info = site.site
    loc = pvlib.location.Location(info.latitude_deg, info.longitude_deg, tz="UTC",
                                  altitude=info.altitude_m)
    solpos = loc.get_solarposition(times_utc)
    sky = loc.get_clearsky(times_utc, model="simplified_solis", solar_position=solpos)
    poa_cache: dict[tuple[float, float], np.ndarray] = {}
    out = np.zeros((len(site.nodes), len(times_utc)))
    for n, node in enumerate(site.nodes):
        for inv in node.pv_inverters:
            key = (inv.rating.tilt_deg, inv.rating.azimuth_deg)
            if key not in poa_cache:
                poa = pvlib.irradiance.get_total_irradiance(
                    key[0], key[1], solpos["apparent_zenith"], solpos["azimuth"],
                    sky["dni"], sky["ghi"], sky["dhi"])["poa_global"]
                poa_cache[key] = np.nan_to_num(np.asarray(poa, dtype=float), nan=0.0)
            dc_kw = inv.rating.dc_kwp * np.maximum(poa_cache[key], 0.0) / 1000.0
            out[n] += np.minimum(dc_kw * (1.0 - SYSTEM_LOSS), inv.rating.ac_kw)
    return out


def _mid_points(start_utc: dt.datetime, step_s: float, n_steps: int) -> pd.DatetimeIndex:
    import pandas as pd

    start = pd.Timestamp(start_utc).tz_convert("UTC") + pd.Timedelta(seconds=step_s / 2)
    return pd.date_range(start, periods=n_steps, freq=pd.Timedelta(seconds=step_s))


@dataclass(frozen=True, eq=False)
class ClearSkyTable:
    """Clear-sky AC power of every node for every bin of a period, computed once.

    A simulation of a year re-plans tens of thousands of times; looking the clear sky up
    here instead of recomputing the sun's position each time makes the PV forecast cheap.

    Parameters
    ----------
    first_bin : int
        Epoch bin index of column 0 (bins of ``bin_s`` from the UNIX epoch).
    bin_s : int
        Bin length [s].
    kw : ndarray, shape (N, B)
        Clear-sky AC power at each bin's mid-point [kW].
    """

    first_bin: int
    bin_s: int
    kw: np.ndarray

    @classmethod
    def build(cls, site: SiteConfig, start_utc: dt.datetime, end_utc: dt.datetime,
              bin_s: int) -> ClearSkyTable:
        """Table covering the bins from the one holding ``start_utc`` up to ``end_utc``."""
        first = int((start_utc - _EPOCH).total_seconds() // bin_s)
        last = int(np.ceil((end_utc - _EPOCH).total_seconds() / bin_s))
        start = _EPOCH + dt.timedelta(seconds=first * bin_s)
        kw = clear_sky_pv_kw(site, _mid_points(start, bin_s, max(last - first, 1)))
        kw.setflags(write=False)
        return cls(first_bin=first, bin_s=int(bin_s), kw=kw)

    def lookup(self, start_utc: dt.datetime, step_s: float, n_steps: int) -> np.ndarray | None:
        """Clear-sky kW for ``n_steps`` steps from ``start_utc``; None when not covered."""
        offset_s = (start_utc - _EPOCH).total_seconds()
        if abs(step_s - self.bin_s) > 1e-9 or offset_s % self.bin_s:
            return None
        col = int(offset_s // self.bin_s) - self.first_bin
        if col < 0 or col + n_steps > self.kw.shape[1]:
            return None
        return self.kw[:, col:col + n_steps]


def _clear_sky(site: SiteConfig, table: ClearSkyTable | None, start_utc: dt.datetime,
               step_s: float, n_steps: int) -> np.ndarray:
    found = table.lookup(start_utc, step_s, n_steps) if table is not None else None
    if found is not None:
        return found
    return clear_sky_pv_kw(site, _mid_points(start_utc, step_s, n_steps))


def clear_sky_ratio(site: SiteConfig, history: MeasurementHistory, start_utc: dt.datetime,
                    table: ClearSkyTable | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Recent ratio of measured to clear-sky PV per node [-] and notes.

    Uses the ``RECENT_BINS`` bins before ``start_utc`` and the bin under way; daylight bins
    only.  A node without such a bin gets ``TYPICAL_RATIO``.
    """
    first = history.bin_of(start_utc) - RECENT_BINS
    bins = np.arange(first, first + RECENT_BINS + 1)
    measured = history.values("pv_kw", bins)[history.rows_for(n.id for n in site.nodes)]
    sky = _clear_sky(site, table, history.bin_start(first), history.bin_s, len(bins))
    rating = np.array([sum(i.rating.ac_kw for i in n.pv_inverters) for n in site.nodes])
    daylight = (sky > _DAYLIGHT_SHARE * rating[:, None]) & np.isfinite(measured)
    ratio = np.full(len(site.nodes), TYPICAL_RATIO)
    notes = []
    for n, node in enumerate(site.nodes):
        if rating[n] <= 0:
            continue
        if daylight[n].any():
            ratio[n] = np.clip(measured[n, daylight[n]].sum() / sky[n, daylight[n]].sum(),
                               0.0, _MAX_RATIO)
        else:
            notes.append(f"node {node.id}: no recent daylight PV readings; "
                         f"typical clear-sky ratio {TYPICAL_RATIO:g}")
    return ratio, tuple(notes)


def forecast_pv_kw(site: SiteConfig, history: MeasurementHistory, start_utc: dt.datetime,
                   step_s: float, n_steps: int, table: ClearSkyTable | None = None,
                   ) -> tuple[np.ndarray, tuple[str, ...]]:
    """PV forecast, step averages [kW], shape ``(N, n_steps)``, and notes.

    Parameters
    ----------
    site : SiteConfig
    history : MeasurementHistory
        Recent measurements (read only).
    start_utc : datetime
        Start of step 0.
    step_s : float
        Step length [s].
    n_steps : int
        Number of steps.
    table : ClearSkyTable, optional
        Precomputed clear sky; used where it covers the steps, else computed here.
    """
    sky = _clear_sky(site, table, start_utc, step_s, n_steps)
    recent, notes = clear_sky_ratio(site, history, start_utc, table)
    lead_h = (np.arange(n_steps) + 0.5) * step_s / 3600.0
    fade = np.exp(-lead_h / RATIO_TAU_H)
    ratio = TYPICAL_RATIO + (recent[:, None] - TYPICAL_RATIO) * fade[None, :]
    rating = np.array([sum(i.rating.ac_kw for i in n.pv_inverters) for n in site.nodes])
    return np.clip(sky * ratio, 0.0, rating[:, None]), notes
