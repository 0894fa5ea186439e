"""The per-node PV and load time series one simulation runs on."""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ProfileError", "ProfileSet", "node_seed", "time_grid"]


class ProfileError(ValueError):
    """Profiles cannot be built or read (bad CSV, gap, span not covered); one-line message."""


def node_seed(seed: int, node_id: str, stream: int, day_ordinal: int) -> np.random.Generator:
    """A generator that depends only on (seed, node, stream, day): same seed, same profiles.

    Seeding per day makes a day's noise independent of the simulated span, so a week is the
    first week of a month-long run with the same seed.
    """
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(node_id.encode()), stream,
                                  day_ordinal])


def time_grid(start_utc: dt.datetime, end_utc: dt.datetime, step_s: float) -> pd.DatetimeIndex:
    """Step starts ``[start, end)`` every ``step_s`` seconds, tz UTC."""
    if start_utc.tzinfo is None or end_utc.tzinfo is None:
        raise ProfileError("profile span must be timezone-aware")
    n_steps = int(round((end_utc - start_utc).total_seconds() / step_s))
    return pd.date_range(start=pd.Timestamp(start_utc).tz_convert("UTC"), periods=n_steps,
                         freq=pd.Timedelta(seconds=step_s))


@dataclass(frozen=True, eq=False)
class ProfileSet:
    """Step-average PV available and load per node over a uniform time grid.

    Parameters
    ----------
    times_utc : DatetimeIndex
        Step starts, tz UTC, uniform spacing ``step_s``.
    step_s : float
        Step length [s].
    node_ids : tuple of str
        Node order of the arrays.
    pv_kw : ndarray, shape (N, T)
        PV power available at the AC side before curtailment [kW], >= 0.
    load_kw : ndarray, shape (N, T)
        Total load demand [kW], >= 0 (critical plus sheddable).
    source : str
        Where the data came from (``synthetic seed=1``, ``measured FILE``) for reports.
    """

    times_utc: pd.DatetimeIndex
    step_s: float
    node_ids: tuple[str, ...]
    pv_kw: np.ndarray
    load_kw: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        shape = (len(self.node_ids), len(self.times_utc))
        for name in ("pv_kw", "load_kw"):
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != shape:
                raise ProfileError(f"profiles.{name}: shape {arr.shape} != {shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ProfileError(f"profiles.{name}: values must be finite and >= 0")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def start_utc(self) -> dt.datetime:
        """First step start (UTC)."""
        return self.times_utc[0].to_pydatetime()

    @property
    def end_utc(self) -> dt.datetime:
        """End of the last step (UTC), exclusive."""
        return (self.times_utc[-1] + pd.Timedelta(seconds=self.step_s)).to_pydatetime()

    def index_of(self, at_utc: dt.datetime) -> int:
        """Index of the step starting at ``at_utc`` (must lie on the grid and inside the span)."""
        offset_s = (at_utc - self.start_utc).total_seconds()
        index = int(round(offset_s / self.step_s))
        if abs(index * self.step_s - offset_s) > 1e-6 or not 0 <= index < len(self.times_utc):
            raise ProfileError(f"profiles cover {self.start_utc:%Y-%m-%dT%H:%M}Z.."
                               f"{self.end_utc:%Y-%m-%dT%H:%M}Z, not {at_utc:%Y-%m-%dT%H:%M}Z")
        return index

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """PV and load [kW] for steps ``[start, stop)``, shape (N, stop-start)."""
        return self.pv_kw[:, start:stop], self.load_kw[:, start:stop]
