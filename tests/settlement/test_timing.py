"""When a period is due: at its end when complete, after the grace time when not."""

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

from gridctl.config import load_site
from gridctl.settlement import PeriodReadings
from gridctl.settlement.timing import expected_channels, is_due

SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
START = dt.datetime(2026, 8, 3, 3, 0, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(minutes=30)


def test_complete_period_is_due_at_its_end():
    readings = PeriodReadings.from_deltas(START, {key: (D(1), D(0)) for key in expected_channels(SITE)})
    assert len(expected_channels(SITE)) == 7 + 2 * 7  # 7 grid meters, 7 links metered at both ends
    assert not is_due(SITE, readings, END - dt.timedelta(seconds=1))
    assert is_due(SITE, readings, END)


def test_incomplete_period_waits_for_the_grace_time():
    keys = sorted(expected_channels(SITE))[1:]  # one channel late
    readings = PeriodReadings.from_deltas(START, {key: (D(1), D(0)) for key in keys})
    grace = dt.timedelta(seconds=SITE.market.grace_period_s)
    assert not is_due(SITE, readings, END)
    assert not is_due(SITE, readings, END + grace - dt.timedelta(seconds=1))
    assert is_due(SITE, readings, END + grace)


def test_period_readings_from_driver_floats():
    from gridctl.settlement.readings_csv import period_readings

    start = {("home-1", "grid"): (1234.5, 10.1)}
    end = {("home-1", "grid"): (1235.7, 10.1), ("home-2", "grid"): (5.0, 0.0)}
    readings = period_readings(START, start, end)
    assert readings.channel("home-1", "grid").deltas_kwh() == (D("1.2"), D("0.0"))
    assert not readings.channel("home-2", "grid").complete
