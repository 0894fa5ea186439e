"""A ring buffer of per-node PV and load measurements, averaged into fixed time bins.

The daemon and the simulator feed it every poll (:meth:`MeasurementHistory.add_snapshot`);
the forecast functions only read it.  Bins are aligned to the UNIX epoch, so with a bin that
divides 30 minutes they line up with the JST settlement periods and the plan steps.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import numpy as np

from gridctl.controller.types import Snapshot

__all__ = ["MeasurementHistory", "QUANTITIES"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

#: Quantities kept per node, in storage order.
QUANTITIES = ("pv_kw", "load_kw")


class MeasurementHistory:
    """Per-node bin averages of PV and load over the last ``days`` days.

    Mutable container (the only one in the core): ``add`` writes, everything else reads.
    A bin holds the mean of the samples added to it; samples of ``None`` are skipped, so a
    bin with no valid sample reads as NaN, never 0.

    Parameters
    ----------
    node_ids : iterable of str
        Nodes to keep, in array order.
    bin_s : int
        Bin length [s]; use the plan step (``control.plan_step_min * 60``).
    days : float
        How far back to keep [days]; 28 covers four same-weekday samples.
    """

    def __init__(self, node_ids: Iterable[str], bin_s: int = 900, days: float = 28.0) -> None:
        self.node_ids = tuple(node_ids)
        if not self.node_ids:
            raise ValueError("MeasurementHistory.node_ids: needs at least one node")
        if bin_s <= 0 or 86400 % bin_s != 0:
            raise ValueError(f"MeasurementHistory.bin_s: {bin_s} s must divide a day")
        if days <= 0:
            raise ValueError("MeasurementHistory.days: must be > 0")
        self.bin_s = int(bin_s)
        self.capacity = int(np.ceil(days * 86400 / bin_s)) + 1
        self._row = {n: i for i, n in enumerate(self.node_ids)}
        self._bin = np.full(self.capacity, -1, dtype=np.int64)
        shape = (len(QUANTITIES), len(self.node_ids), self.capacity)
        self._sum = np.zeros(shape)
        self._count = np.zeros(shape, dtype=np.int64)

    def bin_of(self, at_utc: dt.datetime) -> int:
        """Index of the bin holding ``at_utc`` (bins counted from the UNIX epoch)."""
        if at_utc.tzinfo is None:
            raise ValueError("MeasurementHistory: datetimes must be timezone-aware")
        return int((at_utc - _EPOCH).total_seconds() // self.bin_s)

    def bin_start(self, bin_index: int) -> dt.datetime:
        """Start time of bin ``bin_index`` (UTC)."""
        return _EPOCH + dt.timedelta(seconds=bin_index * self.bin_s)

    def add(self, at_utc: dt.datetime, node_id: str, pv_kw: float | None = None,
            load_kw: float | None = None) -> None:
        """Add one sample [kW] of ``node_id`` taken at ``at_utc``; None values are skipped.

        Samples older than what the buffer holds for their slot are ignored.
        """
        row = self._row.get(node_id)
        if row is None:
            raise KeyError(f"MeasurementHistory: unknown node '{node_id}'")
        b = self.bin_of(at_utc)
        slot = b % self.capacity
        if self._bin[slot] != b:
            if self._bin[slot] > b:
                return  # the slot already holds a newer bin
            self._bin[slot] = b
            self._sum[:, :, slot] = 0.0
            self._count[:, :, slot] = 0
        for q, value in enumerate((pv_kw, load_kw)):
            if value is not None and np.isfinite(value):
                self._sum[q, row, slot] += max(float(value), 0.0)
                self._count[q, row, slot] += 1

    def add_snapshot(self, snapshot: Snapshot) -> None:
        """Add the PV and load readings of every known node in ``snapshot``."""
        for node_id, reading in snapshot.nodes.items():
            if node_id in self._row:
                self.add(snapshot.at_utc, node_id, reading.pv_kw, reading.load_kw)

    def values(self, quantity: str, bins: np.ndarray) -> np.ndarray:
        """Bin means [kW], shape ``(N, len(bins))``; NaN where nothing was recorded.

        Parameters
        ----------
        quantity : {"pv_kw", "load_kw"}
        bins : ndarray of int
            Bin indices (see :meth:`bin_of`).
        """
        if quantity not in QUANTITIES:
            raise ValueError(f"MeasurementHistory.values: unknown quantity '{quantity}'")
        q = QUANTITIES.index(quantity)
        bins = np.asarray(bins, dtype=np.int64)
        slots = bins % self.capacity
        held = self._bin[slots] == bins
        count = self._count[q][:, slots]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum[q][:, slots] / count
        return np.where(held[None, :] & (count > 0), mean, np.nan)

    def rows_for(self, node_ids: Iterable[str]) -> list[int]:
        """Row indices of ``node_ids`` in the arrays of :meth:`values`."""
        rows = []
        for node_id in node_ids:
            if node_id not in self._row:
                raise ValueError(f"MeasurementHistory: no history kept for node '{node_id}'")
            rows.append(self._row[node_id])
        return rows

    def latest_bin(self) -> int | None:
        """The newest bin that holds any sample, or None when empty."""
        newest = int(self._bin.max())
        return newest if newest >= 0 else None
