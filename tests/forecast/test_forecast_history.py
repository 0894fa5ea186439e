"""MeasurementHistory: bin means, missing values, ring wrap-around."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gridctl.controller import NodeReading, Snapshot
from gridctl.forecast import MeasurementHistory

T0 = dt.datetime(2026, 8, 3, 3, 0, tzinfo=dt.timezone.utc)


def test_bin_means_and_missing_values():
    h = MeasurementHistory(["a", "b"], bin_s=900, days=1)
    h.add(T0, "a", pv_kw=1.0, load_kw=2.0)
    h.add(T0 + dt.timedelta(minutes=5), "a", pv_kw=3.0, load_kw=None)
    h.add(T0 + dt.timedelta(minutes=15), "a", pv_kw=None, load_kw=4.0)
    b = h.bin_of(T0)
    pv = h.values("pv_kw", np.array([b, b + 1, b + 2]))
    load = h.values("load_kw", np.array([b, b + 1]))
    assert pv[0, 0] == 2.0 and np.isnan(pv[0, 1]) and np.isnan(pv[0, 2])
    assert load[0].tolist() == [2.0, 4.0]  # the None sample did not count as 0
    assert np.isnan(pv[1]).all()           # node b never reported: NaN, never 0
    assert h.bin_start(b) == T0 and h.latest_bin() == b + 1


def test_ring_forgets_old_bins_and_ignores_late_ones():
    h = MeasurementHistory(["a"], bin_s=900, days=1)  # 97 slots
    h.add(T0, "a", load_kw=1.0)
    later = T0 + dt.timedelta(seconds=900 * h.capacity)  # same slot, one lap later
    h.add(later, "a", load_kw=5.0)
    b = h.bin_of(T0)
    assert np.isnan(h.values("load_kw", np.array([b]))[0, 0])
    assert h.values("load_kw", np.array([h.bin_of(later)]))[0, 0] == 5.0
    h.add(T0, "a", load_kw=9.0)  # a late sample for a bin already overwritten
    assert h.values("load_kw", np.array([h.bin_of(later)]))[0, 0] == 5.0


def test_add_snapshot_and_bad_input():
    h = MeasurementHistory(["home-1"], bin_s=900)
    snap = Snapshot(T0, {"home-1": NodeReading(pv_kw=1.5, load_kw=0.5),
                         "other": NodeReading(pv_kw=9.0)})
    h.add_snapshot(snap)
    b = np.array([h.bin_of(T0)])
    assert h.values("pv_kw", b)[0, 0] == 1.5 and h.values("load_kw", b)[0, 0] == 0.5
    with pytest.raises(KeyError, match="unknown node 'x'"):
        h.add(T0, "x", pv_kw=1.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        h.add(T0.replace(tzinfo=None), "home-1", pv_kw=1.0)
    with pytest.raises(ValueError, match="must divide a day"):
        MeasurementHistory(["a"], bin_s=7)
    with pytest.raises(ValueError, match="unknown quantity"):
        h.values("soc_pct", b)


def test_negative_samples_are_floored():
    h = MeasurementHistory(["a"], bin_s=900)
    h.add(T0, "a", pv_kw=-0.2, load_kw=float("nan"))
    b = np.array([h.bin_of(T0)])
    assert h.values("pv_kw", b)[0, 0] == 0.0
    assert np.isnan(h.values("load_kw", b)[0, 0])


def test_forecast_reads_rows_by_node_id_not_position():
    from pathlib import Path

    from gridctl.config import load_site
    from gridctl.forecast import clear_sky_ratio, forecast_load_kw

    site = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
    ids = [n.id for n in site.nodes]
    start = dt.datetime(2026, 8, 10, 2, 0, tzinfo=dt.timezone.utc)
    reordered = MeasurementHistory(list(reversed(ids)), bin_s=900)
    reordered.add(start - dt.timedelta(weeks=1), "mall", load_kw=70.0)
    reordered.add(start - dt.timedelta(hours=1), "home-1", pv_kw=0.0)  # 10:00 JST: dark roof
    load, _ = forecast_load_kw(site, reordered, start, 900.0, 1)
    assert load[ids.index("mall"), 0] == 70.0
    ratio, _ = clear_sky_ratio(site, reordered, start)
    assert ratio[ids.index("home-1")] == 0.0 and ratio[ids.index("mall")] > 0.0
    partial = MeasurementHistory(["home-1"], bin_s=900)
    with pytest.raises(ValueError, match="no history kept for node 'home-2'"):
        forecast_load_kw(site, partial, start, 900.0, 1)
