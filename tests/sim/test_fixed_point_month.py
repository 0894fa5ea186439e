"""A month of the ECHONET Lite site settles from its smart meters' fixed 30-minute counters.

The simulator runs August 2026 of configs/misono-echonet.yaml (five homes with B-route smart
meters, the store and the mall with SunSpec meters) at a coarse step; every period of its
ledger is settled from the homes' fixed-point counters, ``gridctl settle verify --config``
(a real subprocess) re-settles the month and passes, and the daemon's recorder, fed the same
plant counters as its meters would deliver them (live samples a few seconds off the boundary,
the fixed values a while after it), records the very same readings and settlements.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.daemon.lifecycle.build import LedgerPeriods
from gridctl.daemon.stages.record import Recorder
from gridctl.daemon.stages.snapshot import CounterSample, expected_channels, pv_channels
from gridctl.ledger import Ledger
from gridctl.settlement.model import CounterSource
from gridctl.settlement.timing import fixed_point_channels
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy
from sim.runner.forecasting import HISTORY_DAYS
from sim.runner.outputs import write_ledger

REPO = Path(__file__).resolve().parents[2]
SITE_FILE = REPO / "configs" / "misono-echonet.yaml"
JST = dt.timezone(dt.timedelta(hours=9))
START = dt.datetime(2026, 8, 1, tzinfo=JST).astimezone(dt.UTC)
END = dt.datetime(2026, 9, 1, tzinfo=JST).astimezone(dt.UTC)
STEP_S = 1800.0  # coarse: one plant step per settlement period
HOMES = [f"home-{i}" for i in range(1, 6)]


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    site = load_site(SITE_FILE)
    profiles = synthetic_profiles(site, START - dt.timedelta(days=HISTORY_DAYS),
                                  END + dt.timedelta(hours=1), STEP_S, seed=3)
    result = run_policy(Scenario(site, profiles, START, END, step_s=STEP_S, replan_s=4 * STEP_S),
                        "rolling")
    folder = tmp_path_factory.mktemp("fixed-month")
    return site, result, write_ledger(folder, result), folder


@pytest.mark.slow
def test_every_period_of_the_month_settles_from_fixed_counters_and_verifies(month):
    site, result, ledger_path, folder = month
    assert fixed_point_channels(site) == [(home, "grid") for home in HOMES]
    assert len(result.settlements) == 31 * 48
    traded = 0
    for readings, settlement in result.settlements:
        for home in HOMES:
            grid = readings.channel(home, "grid")
            assert (grid.start_source, grid.end_source) == (CounterSource.FIXED_POINT,) * 2
            assert grid.complete
        assert readings.channel("store", "grid").end_source is None  # a SunSpec meter: live
        assert not [f for f in settlement.flags if f.startswith(("fixed_point_missing", "missing:"))]
        traded += settlement.sold_kwh > 0
    assert traded > 100  # P2P trade happened: the month exercises the market, not just grid bills
    done = subprocess.run(
        [sys.executable, "-c", "from gridctl.cli import main; main()", "settle", "verify",
         "--ledger", str(ledger_path), "--config", str(SITE_FILE)],
        cwd=folder, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("head seq ")


def _boundaries(result) -> dict[dt.datetime, dict[tuple[str, str], tuple]]:
    """The plant's counters at every boundary of the run, as the simulator recorded them."""
    out: dict[dt.datetime, dict[tuple[str, str], tuple]] = {}
    for readings, _settlement in result.settlements:
        for c in readings.channels:
            out.setdefault(readings.start_utc, {})[(c.member_id, c.channel)] = (
                c.start_import_kwh, c.start_export_kwh)
            out.setdefault(readings.end_utc, {})[(c.member_id, c.channel)] = (
                c.end_import_kwh, c.end_export_kwh)
    return out


@pytest.mark.slow
def test_the_daemon_records_the_same_readings_from_late_fixed_values(month, tmp_path):
    site, result, _ledger_path, _folder = month
    first_day = result.settlements[:48]
    counters = _boundaries(result)
    fixed = set(fixed_point_channels(site))
    ledger = Ledger(tmp_path / "daemon.sqlite", site.site.id, clock=lambda: START)
    recorder = Recorder(expected_channels(site), site.market.grace_period_s, LedgerPeriods(site, ledger),
                        optional_channels=pv_channels(site), fixed_channels=sorted(fixed))
    for k in range(len(first_day) + 1):
        boundary = START + dt.timedelta(minutes=30 * k)
        at = counters[boundary]
        live = [CounterSample(m, c, float(i) + (0.004 if (m, c) in fixed else 0.0), float(e))
                for (m, c), (i, e) in at.items()]  # the smart meters' live values run on
        recorder.observe(boundary + dt.timedelta(seconds=3), live)
        assert recorder.settle_due(boundary + dt.timedelta(seconds=3)) == 0  # waits for 0xEA/0xEB
        published = [CounterSample(m, c, float(i), float(e), fixed_at_utc=boundary)
                     for (m, c), (i, e) in at.items() if (m, c) in fixed]
        recorder.observe(boundary + dt.timedelta(seconds=40), published)
        assert recorder.settle_due(boundary + dt.timedelta(seconds=40)) == (1 if k else 0)
    for readings, settlement in first_day:
        (mine, revision), = ledger.settlements(readings.start_utc, readings.end_utc)
        assert ledger.readings(readings.start_utc, revision).to_json() == readings.to_json()
        assert mine == settlement
