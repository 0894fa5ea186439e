"""Measured per-node profiles from a CSV file, because operators have real meter data.

Format (documented in :data:`CSV_FORMAT`)::

    timestamp,node,pv_kw,load_kw
    2026-08-01T00:00:00+09:00,home-1,0.0,0.412
    2026-08-01T00:15:00+09:00,home-1,0.0,0.395

* ``timestamp``: ISO 8601 with a UTC offset (or ``Z``): the START of the interval.
* ``node``: a node id of the site file. Nodes that do not appear get synthetic profiles.
* ``pv_kw``, ``load_kw``: average power over the interval [kW], >= 0; ``pv_kw`` is what the
  array could produce (before curtailment), ``load_kw`` the whole demand of the node.
* One node's rows are evenly spaced (its interval, e.g. 15 or 30 minutes) without gaps or
  duplicates; rows of different nodes may be interleaved in any order.

Every problem is a :class:`ProfileError` with one line naming the file, line and what is wrong.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from sim.profiles.profileset import ProfileError, ProfileSet, time_grid

__all__ = ["CSV_FORMAT", "read_measured_csv"]

CSV_FORMAT = ("CSV columns timestamp,node,pv_kw,load_kw; timestamp ISO 8601 with offset = interval "
              "start; pv_kw/load_kw = interval-average power [kW] >= 0; each node evenly spaced")
_COLUMNS = ("timestamp", "node", "pv_kw", "load_kw")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ProfileError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise ProfileError(f"{path}:1: missing column(s) {', '.join(missing)}; {CSV_FORMAT}")
    frame = frame[list(_COLUMNS)].copy()
    frame["line"] = np.arange(len(frame)) + 2
    return frame


def _parse_values(path: Path, frame: pd.DataFrame, node_ids: tuple[str, ...]) -> pd.DataFrame:
    unknown = frame[~frame["node"].isin(node_ids)]
    if len(unknown):
        row = unknown.iloc[0]
        raise ProfileError(f"{path}:{row['line']}: unknown node '{row['node']}' "
                           f"(site nodes: {', '.join(node_ids)})")
    stamps = pd.to_datetime(frame["timestamp"], errors="coerce", utc=False, format="ISO8601")
    bad = stamps.isna() | ~frame["timestamp"].str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if bad.any():
        row = frame[bad].iloc[0]
        raise ProfileError(f"{path}:{row['line']}: timestamp '{row['timestamp']}' is not ISO 8601 "
                           "with a UTC offset")
    frame["t"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    for col in ("pv_kw", "load_kw"):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | (values < 0) | ~np.isfinite(values)
        if bad.any():
            row = frame[bad].iloc[0]
            raise ProfileError(f"{path}:{row['line']}: {col} '{row[col]}' must be a number >= 0")
        frame[col] = values.astype(float)
    return frame


def _node_series(path: Path, rows: pd.DataFrame, node: str) -> tuple[pd.Timedelta, pd.DataFrame]:
    rows = rows.sort_values("t")
    deltas = rows["t"].diff().iloc[1:]
    if len(rows) < 2:
        raise ProfileError(f"{path}: node {node} has fewer than two rows")
    interval = deltas.min()
    if interval <= pd.Timedelta(0):
        line = rows["line"].iloc[int(np.argmin(deltas.to_numpy())) + 1]
        raise ProfileError(f"{path}:{line}: node {node} has a duplicate timestamp")
    gap = deltas != interval
    if gap.any():
        at = int(np.argmax(gap.to_numpy()))
        raise ProfileError(f"{path}:{rows['line'].iloc[at + 1]}: node {node} has a gap: "
                           f"{rows['t'].iloc[at]:%Y-%m-%dT%H:%M}Z is followed by "
                           f"{rows['t'].iloc[at + 1]:%Y-%m-%dT%H:%M}Z (interval {interval})")
    return interval, rows


def _regrid(path: Path, node: str, interval: pd.Timedelta, rows: pd.DataFrame,
            start_utc: dt.datetime, end_utc: dt.datetime, step_s: float) -> np.ndarray:
    """Values (2, T) on the simulation grid, energy-preserving."""
    first, last = rows["t"].iloc[0], rows["t"].iloc[-1] + interval
    if first > pd.Timestamp(start_utc) or last < pd.Timestamp(end_utc):
        raise ProfileError(f"{path}: node {node} covers {first:%Y-%m-%dT%H:%M}Z..{last:%Y-%m-%dT%H:%M}Z, "
                           f"the simulation needs {start_utc:%Y-%m-%dT%H:%M}Z..{end_utc:%Y-%m-%dT%H:%M}Z")
    interval_s = interval.total_seconds()
    grid = time_grid(start_utc, end_utc, min(step_s, interval_s))
    series = rows.set_index("t")[["pv_kw", "load_kw"]]
    values = series.reindex(grid, method="ffill").to_numpy().T
    if interval_s % step_s == 0:
        return values
    if step_s % interval_s == 0:
        k = int(step_s // interval_s)
        return values.reshape(2, -1, k).mean(axis=2)
    raise ProfileError(f"{path}: node {node} interval {interval} does not fit the step {step_s:g} s")


def read_measured_csv(
    path: str | Path, node_ids: tuple[str, ...], start_utc: dt.datetime, end_utc: dt.datetime,
    step_s: float,
) -> tuple[ProfileSet, tuple[str, ...]]:
    """Read measured profiles for ``[start_utc, end_utc)`` on a ``step_s`` grid.

    Returns
    -------
    (profiles, missing) : tuple
        Profiles for every node in ``node_ids`` (rows of nodes absent from the file are zero),
        and the ids of those absent nodes, which the caller fills from another source.
    """
    path = Path(path)
    frame = _parse_values(path, _read_table(path), node_ids)
    times = time_grid(start_utc, end_utc, step_s)
    pv = np.zeros((len(node_ids), len(times)))
    load = np.zeros_like(pv)
    present = set(frame["node"])
    for i, node in enumerate(node_ids):
        if node not in present:
            continue
        interval, rows = _node_series(path, frame[frame["node"] == node], node)
        pv[i], load[i] = _regrid(path, node, interval, rows, start_utc, end_utc, step_s)
    missing = tuple(n for n in node_ids if n not in present)
    return (ProfileSet(times_utc=times, step_s=step_s, node_ids=node_ids, pv_kw=pv, load_kw=load,
                       source=f"measured {path.name}"), missing)
