"""One simulated day of the Misono block in a real InfluxDB, shipped through gridctl's own sink.

The simulator settles every period into its ledger, which queues ``settlement_period`` and
``settlement_member`` points in the outbox. Telemetry is queued the way the daemon queues it:
each simulated step's snapshot (what the controller read) goes through the daemon's
:class:`~gridctl.daemon.stages.telemetry.TelemetryRecorder` into
:class:`~gridctl.daemon.lifecycle.build.LedgerTelemetry`, the same outbox; mode transitions
through ``TelemetryRecorder.transition``. Then :class:`~gridctl.sinks.OutboxShipper` ships the
outbox over the v1 transport to the ``influxd`` of ``tests/fixtures/influxdb.py``.

Where the simulator differs from a daemon: its batteries report stored energy, which is turned
into the state of charge a battery's own register reports; the cycle time is the simulator's
wall time per step; no device faults (the sim's devices never fail).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridctl.config import SiteConfig, load_site
from gridctl.controller.types import ControllerState, Mode, Snapshot
from gridctl.daemon.clock import SystemClock
from gridctl.daemon.lifecycle.build import LedgerTelemetry
from gridctl.daemon.lifecycle.storage import StorageHealth
from gridctl.daemon.stages.cycle import CycleReport
from gridctl.daemon.stages.telemetry import TelemetryRecorder
from gridctl.ledger import Ledger
from gridctl.sinks import OutboxShipper, V1Transport
from sim.outages import OutageWindow
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
UTC = dt.timezone.utc
START = dt.datetime(2026, 8, 2, 15, tzinfo=UTC)  # 2026-08-03 00:00 JST
END = START + dt.timedelta(days=1)
STEP_S = 900.0


@dataclass(frozen=True)
class FilledDay:
    """The server, database and simulated span the dashboards are queried over."""

    server: object
    database: str
    site: SiteConfig
    start_utc: dt.datetime
    end_utc: dt.datetime
    link_ids: tuple[str, ...]
    battery_nodes: tuple[str, ...]
    islandings: int
    periods: int
    flags: int           # data-quality flags over all settled periods
    failed_checks: int


def _with_soc(site: SiteConfig, snapshot: Snapshot) -> Snapshot:
    """The snapshot with each battery's SoC [%] as its register reports it."""
    capacity = {n.id: sum(b.rating.capacity_kwh for b in n.batteries) for n in site.nodes}
    nodes = {node_id: dataclasses.replace(r, soc_pct=100.0 * r.stored_kwh / capacity[node_id])
             if r.stored_kwh is not None and capacity[node_id] > 0 else r
             for node_id, r in snapshot.nodes.items()}
    return dataclasses.replace(snapshot, nodes=nodes)


def _queue_telemetry(site: SiteConfig, ledger: Ledger, steps, modes: list[str]) -> int:
    """Queue each step's sample and each mode transition as the daemon would; returns islandings."""
    sink = LedgerTelemetry(site.site.id, ledger, StorageHealth(SystemClock()))
    telemetry = TelemetryRecorder(site.site.id, STEP_S, sink)
    islandings, before = 0, modes[0]
    for (now, snapshot, cycle_s), mode in zip(steps, modes):
        if mode != before:
            telemetry.transition(before, mode, ("simulated outage",), now)
            islandings += mode == Mode.ISLANDED.value
            before = mode
        state = ControllerState(mode=Mode(mode), mode_since_utc=now)
        report = CycleReport(at_utc=now, duration_s=cycle_s,
                             device_faults={d.id: None for _, d in site.all_devices()})
        telemetry.observe(_with_soc(site, snapshot), state, report, now)
    return islandings


@pytest.fixture(scope="module")
def filled_day(influxdb_server) -> FilledDay:
    influxdb_server.start()
    site = load_site(CONFIG)
    profiles = synthetic_profiles(site, START - dt.timedelta(days=28), END, STEP_S, 1)
    outage = OutageWindow(START + dt.timedelta(hours=10), START + dt.timedelta(hours=12),
                          warning=dt.timedelta(hours=1))
    steps, last = [], [time.perf_counter()]

    def trace(k, now, snapshot, setpoints, counters):
        tick = time.perf_counter()
        steps.append((now, snapshot, tick - last[0]))
        last[0] = tick

    scenario = Scenario(site, profiles, START, END, step_s=STEP_S, replan_s=3600.0, outages=(outage,))
    result = run_policy(scenario, "rolling", trace=trace)
    ledger = result.settlements.ledger
    islandings = _queue_telemetry(site, ledger, steps, result.modes)
    database = influxdb_server.create_database()
    shipper = OutboxShipper(ledger, V1Transport(influxdb_server.url, database))
    while shipper.ship_once():
        pass
    assert ledger.outbox_backlog()[0] == 0
    batteries = tuple(n.id for n in site.nodes if n.batteries)
    settled = [st for _, st in result.settlements]
    flags = sum(len(st.flags) for st in settled)
    failed = sum(not ok for st in settled for ok in (st.checks.energy_balance_ok,
                 st.checks.money_balance_ok, st.checks.individually_rational_ok))
    return FilledDay(influxdb_server, database, site, START, END, result.link_ids, batteries,
                     islandings, len(settled), flags, failed)
