"""Outage and duration specs as operators type them."""

import datetime as dt

import numpy as np
import pytest

from sim.outages import OutageWindow, SpecError, outage_masks, parse_duration, parse_outage, parse_start

UTC = dt.timezone.utc


@pytest.mark.parametrize("text, seconds", [("72h", 259200), ("15min", 900), ("15m", 900),
                                           ("1d12h", 129600), ("90s", 90), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "h", "72", "72 hours", "-1h", "0h", "1h-", "1x"])
def test_bad_durations_name_the_input(text):
    with pytest.raises(SpecError) as err:
        parse_duration(text, "--outage-warning")
    assert "--outage-warning" in str(err.value) and "\n" not in str(err.value)


def test_outage_local_time_without_offset_is_site_time():
    w = parse_outage("2026-08-10T14:00/72h", "Asia/Tokyo", dt.timedelta(hours=24))
    assert w.start_utc == dt.datetime(2026, 8, 10, 5, 0, tzinfo=UTC)
    assert w.end_utc == dt.datetime(2026, 8, 13, 5, 0, tzinfo=UTC)
    assert w.warned_from_utc == dt.datetime(2026, 8, 9, 5, 0, tzinfo=UTC)
    assert w.duration_h == 72


def test_outage_with_offset():
    w = parse_outage("2026-08-10T05:00+00:00/2h", "Asia/Tokyo")
    assert w.start_utc == dt.datetime(2026, 8, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize("spec", ["2026-08-10T14:00", "2026-13-10T14:00/2h", "2026-08-10/xx",
                                  "a/b/c", "2026-08-10T14:00/0h"])
def test_bad_outages_are_one_line_errors(spec):
    with pytest.raises(SpecError) as err:
        parse_outage(spec, "Asia/Tokyo")
    assert spec in str(err.value) and "\n" not in str(err.value)


def test_start_parsing():
    assert parse_start("2026-08-01", "Asia/Tokyo") == dt.datetime(2026, 7, 31, 15, tzinfo=UTC)
    with pytest.raises(SpecError):
        parse_start("tomorrow", "Asia/Tokyo")


def test_masks_mark_overlapping_steps_and_knowledge():
    start = dt.datetime(2026, 8, 1, tzinfo=UTC)
    steps = [start + dt.timedelta(minutes=15 * k) for k in range(8)]
    w = OutageWindow(start + dt.timedelta(minutes=40), start + dt.timedelta(minutes=70),
                     warning=dt.timedelta(minutes=30))
    out, known = outage_masks((w,), steps, 900, now_utc=start)
    assert out.tolist() == [False, False, True, True, True, False, False, False]
    assert not known.any()  # warned only from 00:10
    _, known = outage_masks((w,), steps, 900, now_utc=start + dt.timedelta(minutes=10))
    assert np.array_equal(known, out)
