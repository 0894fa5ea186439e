"""Synthetic and measured profiles: seeded, scaled, physically sensible; CSV errors are one line."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridctl.config import load_site
from sim.profiles import ProfileError, read_measured_csv, synthetic_profiles, to_step
from sim.profiles.loads import load_kw_15min

UTC = dt.timezone.utc
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
START = dt.datetime(2026, 7, 31, 15, tzinfo=UTC)  # 2026-08-01 00:00 JST


@pytest.fixture(scope="module")
def site():
    return load_site(CONFIG)


@pytest.fixture(scope="module")
def week(site):
    return synthetic_profiles(site, START, START + dt.timedelta(days=7), 900, seed=3)


def test_same_seed_same_profiles_and_other_seed_differs(site, week):
    again = synthetic_profiles(site, START, START + dt.timedelta(days=7), 900, seed=3)
    other = synthetic_profiles(site, START, START + dt.timedelta(days=7), 900, seed=4)
    assert np.array_equal(week.pv_kw, again.pv_kw) and np.array_equal(week.load_kw, again.load_kw)
    assert not np.array_equal(week.pv_kw, other.pv_kw)
    assert not np.array_equal(week.load_kw, other.load_kw)


def test_a_day_does_not_depend_on_the_span(site, week):
    day = synthetic_profiles(site, START + dt.timedelta(days=2), START + dt.timedelta(days=3), 900, seed=3)
    assert np.array_equal(day.pv_kw, week.pv_kw[:, 192:288])
    assert np.array_equal(day.load_kw, week.load_kw[:, 192:288])


def test_pv_is_zero_at_night_and_within_inverter_rating(site, week):
    rating = np.array([sum(p.rating.ac_kw for p in n.pv_inverters) for n in site.nodes])
    assert np.all(week.pv_kw <= rating[:, None] + 1e-9)
    local_hour = week.times_utc.tz_convert("Asia/Tokyo").hour
    night = (local_hour < 4) | (local_hour >= 20)
    assert np.all(week.pv_kw[:, night] == 0)
    assert np.all(week.pv_kw[:, (local_hour >= 11) & (local_hour < 13)].max(axis=1) > 0.3 * rating)


def test_clear_sky_beats_clouds_on_average(site, week):
    clear = synthetic_profiles(site, START, START + dt.timedelta(days=7), 900, seed=3, sky="clear")
    assert clear.pv_kw.sum() > week.pv_kw.sum()
    daily = clear.pv_kw.reshape(7, 7, 96).sum(axis=2)
    cloudy = week.pv_kw.reshape(7, 7, 96).sum(axis=2)
    assert np.std(cloudy[0]) > np.std(daily[0])  # day-to-day variability from the cloud model


def test_h25_and_commercial_profiles_scale_to_annual_kwh():
    idx = pd.date_range("2026-01-01", "2027-01-01", freq="15min", inclusive="left")
    for kind, annual in (("h25", 5200.0), ("shopping_mall", 600000.0), ("convenience_store", 150000.0)):
        kwh = load_kw_15min(kind, annual, "n", 1, idx).sum() * 0.25
        # multiplicative noise has mean 1; a year of it averages out to within a few per cent
        assert abs(kwh / annual - 1) < 0.04, kind


def test_mall_trades_by_day_and_idles_at_night(site, week):
    mall = week.load_kw[site.nodes.index(site.node("mall"))]
    hour = week.times_utc.tz_convert("Asia/Tokyo").hour
    assert mall[(hour >= 12) & (hour < 16)].mean() > 3 * mall[(hour >= 1) & (hour < 5)].mean()


def test_regridding_preserves_energy():
    values = np.arange(8.0).reshape(1, 8)
    assert to_step(values, 1800).sum() * 0.5 == pytest.approx(values.sum() * 0.25)
    assert to_step(values, 300).sum() * (300 / 3600) == pytest.approx(values.sum() * 0.25)
    with pytest.raises(ProfileError):
        to_step(values, 700)


def _write_csv(path: Path, week, nodes=None, drop=None, rename=None, tz="+09:00"):
    rows = []
    local = week.times_utc.tz_convert("Asia/Tokyo")
    for i, node in enumerate(week.node_ids):
        if nodes is not None and node not in nodes:
            continue
        for k in range(len(local)):
            if drop is not None and (node, k) == drop:
                continue
            stamp = local[k].strftime("%Y-%m-%dT%H:%M:%S") + tz
            rows.append(f"{stamp},{rename.get(node, node) if rename else node},"
                        f"{week.pv_kw[i, k]:.6f},{week.load_kw[i, k]:.6f}")
    path.write_text("timestamp,node,pv_kw,load_kw\n" + "\n".join(rows) + "\n")
    return path


def test_measured_csv_round_trip_and_30_minute_regrid(tmp_path, week):
    path = _write_csv(tmp_path / "p.csv", week)
    got, missing = read_measured_csv(path, week.node_ids, START, START + dt.timedelta(days=2), 900)
    assert missing == ()
    assert np.allclose(got.pv_kw, week.pv_kw[:, :192], atol=1e-6)
    assert np.allclose(got.load_kw, week.load_kw[:, :192], atol=1e-6)
    half, _ = read_measured_csv(path, week.node_ids, START, START + dt.timedelta(days=2), 1800)
    assert half.load_kw.sum() * 0.5 == pytest.approx(got.load_kw.sum() * 0.25)


def test_nodes_absent_from_the_csv_are_reported(tmp_path, week):
    path = _write_csv(tmp_path / "p.csv", week, nodes={"home-1", "mall"})
    got, missing = read_measured_csv(path, week.node_ids, START, START + dt.timedelta(days=1), 900)
    assert set(missing) == set(week.node_ids) - {"home-1", "mall"}


def _error(path, week, days=1) -> str:
    with pytest.raises(ProfileError) as err:
        read_measured_csv(path, week.node_ids, START, START + dt.timedelta(days=days), 900)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_unknown_node_names_file_line_and_node(tmp_path, week):
    path = _write_csv(tmp_path / "p.csv", week, rename={"home-3": "home-9"})
    message = _error(path, week)
    assert "unknown node 'home-9'" in message and ":" + str(2 + 2 * 672) in message


def test_gap_is_an_error(tmp_path, week):
    message = _error(_write_csv(tmp_path / "p.csv", week, drop=("store", 50)), week)
    assert "node store has a gap" in message


def test_dates_outside_the_file(tmp_path, week):
    message = _error(_write_csv(tmp_path / "p.csv", week), week, days=8)
    assert "covers" in message and "needs" in message


def test_bad_values_and_columns(tmp_path, week):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,node,pv_kw,load_kw\n2026-08-01T00:00:00+09:00,home-1,-1,0.5\n")
    assert "pv_kw '-1' must be a number >= 0" in _error(bad, week)
    bad.write_text("timestamp,node,pv_kw\n")
    assert "missing column(s) load_kw" in _error(bad, week)
    naive = _write_csv(tmp_path / "naive.csv", week, tz="")
    assert "UTC offset" in _error(naive, week)
    assert "file not found" in _error(tmp_path / "nope.csv", week)
