"""PV and load forecast properties on the Misono site."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridctl.config import load_site
from gridctl.forecast import (
    clear_sky_pv_kw,
    clear_sky_ratio,
    forecast_for,
    forecast_load_kw,
    forecast_pv_kw,
    new_history,
    typical_day_kw,
)
from gridctl.forecast.pv import TYPICAL_RATIO

SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
#: Monday 2026-08-03 00:00 JST.
MIDNIGHT_JST = dt.datetime(2026, 8, 2, 15, 0, tzinfo=dt.timezone.utc)
RATING_KW = np.array([sum(i.rating.ac_kw for i in n.pv_inverters) for n in SITE.nodes])


def _day_times(day_start_utc, step_s=900):
    start = pd.Timestamp(day_start_utc) + pd.Timedelta(seconds=step_s / 2)
    return pd.date_range(start, periods=int(86400 / step_s), freq=pd.Timedelta(seconds=step_s))


def test_clear_sky_is_zero_at_night_and_peaks_near_noon():
    pv = clear_sky_pv_kw(SITE, _day_times(MIDNIGHT_JST))
    assert pv.shape == (7, 96)
    assert np.all(pv >= 0) and np.all(pv <= RATING_KW[:, None] + 1e-9)
    assert not pv[:, :16].any() and not pv[:, 80:].any()  # 00:00-04:00 and 20:00-24:00 JST
    peak_step = int(np.argmax(pv[0]))
    assert 44 <= peak_step <= 52  # 11:00-13:00 JST for a south-facing array
    # A summer clear-sky noon gives a 4.8 kWp, 4.5 kW home close to its rating.
    assert pv[0, peak_step] > 3.5


def _history_at_ratio(ratio, now):
    history = new_history(SITE)
    first = now - dt.timedelta(hours=3)
    times = pd.date_range(pd.Timestamp(first), pd.Timestamp(now), freq="5min")
    sky = clear_sky_pv_kw(SITE, times)
    for j, t in enumerate(times):
        for n, node in enumerate(SITE.nodes):
            history.add(t.to_pydatetime(), node.id, pv_kw=ratio * sky[n, j])
    return history


def test_pv_follows_the_recent_clear_sky_ratio_then_relaxes():
    now = MIDNIGHT_JST + dt.timedelta(hours=11)  # 11:00 JST
    history = _history_at_ratio(0.4, now)
    ratio, notes = clear_sky_ratio(SITE, history, now)
    np.testing.assert_allclose(ratio, 0.4, atol=0.03)
    assert notes == ()
    pv, _ = forecast_pv_kw(SITE, history, now, 900.0, 96)
    sky = clear_sky_pv_kw(SITE, _day_times(now))
    # Early steps near the measured ratio, later ones near the typical ratio.
    np.testing.assert_allclose(pv[0, 0] / sky[0, 0], 0.4, atol=0.04)
    late = 24  # 17:00 JST, six hours ahead
    assert pv[0, late] / sky[0, late] == pytest.approx(
        TYPICAL_RATIO + (0.4 - TYPICAL_RATIO) * np.exp(-6.125 / 3.0), abs=0.03)


def test_pv_without_history_uses_the_typical_ratio():
    now = MIDNIGHT_JST + dt.timedelta(hours=11)
    pv, notes = forecast_pv_kw(SITE, new_history(SITE), now, 900.0, 8)
    sky = clear_sky_pv_kw(SITE, _day_times(now)[:8])
    np.testing.assert_allclose(pv, np.minimum(sky * TYPICAL_RATIO, RATING_KW[:, None]))
    assert len(notes) == 7


@settings(max_examples=15, deadline=None)
@given(ratio=st.floats(0.0, 3.0), hour=st.integers(0, 23))
def test_pv_forecast_is_within_zero_and_the_rating(ratio, hour):
    now = MIDNIGHT_JST + dt.timedelta(hours=hour)
    pv, _ = forecast_pv_kw(SITE, _history_at_ratio(ratio, now), now, 900.0, 24)
    assert np.all(pv >= 0) and np.all(pv <= RATING_KW[:, None] + 1e-9)


def test_typical_day_keeps_the_annual_energy():
    hours = (np.arange(96) + 0.5) / 4
    for node in SITE.nodes:
        day_kw = typical_day_kw(node, hours)
        assert np.all(day_kw > 0)
        assert day_kw.mean() * 8760 == pytest.approx(node.load.annual_kwh, rel=1e-3)
    home, mall = SITE.node("home-1"), SITE.node("mall")
    # Homes peak in the evening, the mall in trading hours.
    assert typical_day_kw(home, np.array([19.5]))[0] > typical_day_kw(home, np.array([3.5]))[0]
    assert typical_day_kw(mall, np.array([13.0]))[0] > 3 * typical_day_kw(mall, np.array([3.0]))[0]
    # Continuous over midnight.
    assert typical_day_kw(home, np.array([23.99]))[0] == pytest.approx(
        typical_day_kw(home, np.array([0.0]))[0], rel=1e-2)


def test_load_uses_same_weekday_history_where_there_is_some():
    start = MIDNIGHT_JST + dt.timedelta(days=28)  # Monday, four weeks on
    history = new_history(SITE)
    for week, load_kw in ((1, 1.0), (2, 2.0), (3, 3.0), (4, 6.0)):
        t = start - dt.timedelta(weeks=week)
        history.add(t, "home-1", load_kw=load_kw)                    # step 0, every week
        if week == 2:
            history.add(t + dt.timedelta(minutes=15), "home-1", load_kw=7.0)  # step 1 once
    # A Sunday sample must not leak into Monday's forecast.
    history.add(start - dt.timedelta(days=1, minutes=-30), "home-1", load_kw=50.0)
    load, notes = forecast_load_kw(SITE, history, start, 900.0, 4)
    assert load[0, 0] == pytest.approx(3.0)        # (1 + 2 + 3 + 6) / 4
    assert load[0, 1] == pytest.approx(7.0)
    fallback = typical_day_kw(SITE.node("home-1"), np.array([2.5 / 4, 3.5 / 4]))
    np.testing.assert_allclose(load[0, 2:], fallback)
    assert "2 of 4 steps" in notes[0]


def test_load_step_must_match_the_history_bins():
    with pytest.raises(ValueError, match="differs from the history bins"):
        forecast_load_kw(SITE, new_history(SITE), MIDNIGHT_JST, 1800.0, 4)


def test_forecast_for_the_plan_horizon():
    now = MIDNIGHT_JST + dt.timedelta(hours=12, minutes=7)
    forecast = forecast_for(SITE, new_history(SITE), now)
    assert forecast.start_utc == MIDNIGHT_JST + dt.timedelta(hours=12)
    assert forecast.pv_kw.shape == forecast.load_kw.shape == (7, 96)
    assert forecast.node_ids == tuple(n.id for n in SITE.nodes)
    assert np.all(forecast.pv_kw >= 0) and np.all(forecast.load_kw > 0)
    assert any("typical" in n for n in forecast.notes)


def test_clear_sky_table_gives_the_same_forecast():
    from gridctl.forecast import ClearSkyTable

    now = MIDNIGHT_JST + dt.timedelta(hours=10, minutes=7)
    history = _history_at_ratio(0.6, now)
    table = ClearSkyTable.build(SITE, MIDNIGHT_JST - dt.timedelta(days=1),
                                MIDNIGHT_JST + dt.timedelta(days=3), 900)
    direct = forecast_for(SITE, history, now)
    tabled = forecast_for(SITE, history, now, clear_sky=table)
    np.testing.assert_allclose(tabled.pv_kw, direct.pv_kw, atol=1e-9)
    assert tabled.notes == direct.notes
    # Outside the table it falls back to computing, with the same answer.
    short = ClearSkyTable.build(SITE, now, now + dt.timedelta(hours=1), 900)
    np.testing.assert_allclose(forecast_for(SITE, history, now, clear_sky=short).pv_kw,
                               direct.pv_kw, atol=1e-9)
    assert short.lookup(now, 900.0, 4) is None  # 10:07 is not on a bin boundary
