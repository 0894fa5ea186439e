"""The daemon stays lean: it does not load what it does not need at run time.

The import check runs in a fresh interpreter (a subprocess), so that nothing this test session
imported counts: it builds the daemon on the scripted plant, runs cycles through a first plan
(forecast, problem, MILP) and the first settlement, then lists the heavy modules it loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np

from gridctl.daemon.stages.clearsky import ClearSkySource
from gridctl.daemon.stages.forecasting import HistoryForecaster
from gridctl.forecast import forecast_for
from tests.daemon.conftest import REPO, START, fast_site

#: Modules the daemon has no use for at run time (reports, simulation, plotting, clear-sky
#: modelling, which runs in a child process): each costs megabytes of resident memory.
#: asyncua too: the scripted plant has no OPC UA driver, as a Modbus-only site has none.
HEAVY = ("pandas", "pvlib", "matplotlib", "demandlib", "reportlab", "openpyxl", "pyarrow",
         "h5py", "jsonschema", "dask", "requests", "scipy.optimize", "scipy.interpolate",
         "sim", "gridctl.reports", "asyncua")

_RUN = """
import asyncio, json, sys, tempfile
from collections import deque
from pathlib import Path
from gridctl.cli import main  # what `gridctl run` imports before it builds the daemon
from gridctl.daemon import ManualClock, build_daemon
from tests.daemon.conftest import START, Plant, fast_site, scripted_factory

site = fast_site(poll_period_s=60.0, setpoint_expiry_s=180.0, replan_period_s=900, horizon_h=4.0)
clock = ManualClock(START)
plant = Plant(clock=clock, writes=deque(maxlen=100))
with tempfile.TemporaryDirectory() as tmp:
    daemon, ledger = build_daemon(site, clock=clock, factory=scripted_factory(plant),
                                  ledger_path=Path(tmp) / "ledger.sqlite", socket_path=None,
                                  shipper=None, runtime_dir=Path(tmp))
    asyncio.run(daemon.run(duration_s=3600))
    settled = len(ledger.settlements())
    ledger.close()
print(json.dumps({"plans": daemon.planner.stats.finished, "settled": settled,
                  "heap_released": getattr(daemon.planner.stats, "heap_released", 0),
                  "sky_builds": getattr(getattr(daemon.cycle.forecaster, "clear_sky", None),
                                        "builds", None),
                  "loaded": [m for m in sys.argv[1:] if m in sys.modules]}))
"""


def test_running_daemon_loads_no_heavy_module():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _RUN, *HEAVY], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["plans"] >= 1 and result["settled"] >= 1  # it did plan and settle
    assert result["loaded"] == []
    assert result["sky_builds"] == 1  # the clear sky came from the child process
    # glibc (this machine): each solve's freed C heap went back to the system.
    assert result["heap_released"] >= result["plans"]


def test_forecast_from_the_child_table_is_the_in_process_forecast():
    site = fast_site(horizon_h=24.0)
    forecaster = HistoryForecaster(site)
    now = START + dt.timedelta(minutes=7)
    for minutes in range(0, 180, 15):  # some measured PV, so the recent ratio is used
        at = now - dt.timedelta(minutes=minutes)
        for node in site.nodes:
            forecaster.history.add(at, node.id, pv_kw=1.5, load_kw=0.8)
    made = forecaster.frozen().forecast(now)
    direct = forecast_for(site, forecaster.history, now)
    assert forecaster.clear_sky.builds == 1
    np.testing.assert_array_equal(made.pv_kw, direct.pv_kw)
    np.testing.assert_array_equal(made.load_kw, direct.load_kw)
    assert made.notes == direct.notes
    # A re-plan 15 minutes on uses the same table: no second child.
    forecaster.forecast(now + dt.timedelta(minutes=15))
    assert forecaster.clear_sky.builds == 1


def test_a_failing_child_leaves_the_forecast_to_the_process_and_retries_later():
    site = fast_site()
    calls = []

    def broken(*args):
        calls.append(args)
        raise OSError("no python here")

    forecaster = HistoryForecaster(site, ClearSkySource(site, build=broken))
    first = forecaster.forecast(START)
    assert np.array_equal(first.pv_kw, forecast_for(site, forecaster.history, START).pv_kw)
    forecaster.forecast(START + dt.timedelta(minutes=30))  # within the back-off: no new try
    assert len(calls) == 1 and forecaster.clear_sky.failures == 1
    forecaster.forecast(START + dt.timedelta(hours=2))
    assert len(calls) == 2
