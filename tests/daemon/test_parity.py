"""Parity: what ``gridctl simulate`` shows is what ``gridctl run`` does.

Twelve hours of the Misono block are simulated with the rolling policy; every step's
snapshot, the plant's meter counters and the setpoints the simulator's loop wrote are kept.
Then the daemon's own :class:`~gridctl.daemon.stages.cycle.Cycle` (its stages, state handling,
planner seam, recorder and ledger) is driven with the very same snapshots and counters, and
must write the same setpoints in every cycle and record the same ledger entries, hash for hash.

The device layer is the only stand-in: the snapshot and counter stages return the simulated
readings instead of polling devices (the drivers have their own tests against real servers),
and writes are captured.  Both sides plan with the true profiles through a persistent
dispatcher (the simulator's forecaster reads the profiles; the daemon's planner here is a
synchronous one over the same forecast), so any difference comes from the loops themselves.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import gridctl.daemon.stages.cycle as cycle_module
import pytest

from gridctl.config import load_site
from gridctl.controller import FinishedPlan, PlanRequest, build_problem, initial_state
from gridctl.daemon.lifecycle.build import LedgerPeriods
from gridctl.daemon.stages.forecasting import HistoryForecaster
from gridctl.daemon.stages.record import Recorder
from gridctl.daemon.stages.snapshot import CounterSample, expected_channels, pv_channels
from gridctl.daemon.stages.telemetry import TelemetryRecorder
from gridctl.ledger import Ledger
from optimizer import Dispatcher
from sim.outages import parse_outage
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy
from sim.runner import policies
from sim.runner.forecasting import HISTORY_DAYS, truth_forecaster
from sim.runner.outputs import write_ledger
from tests.fixtures.relay_site import write_relay_site

REPO = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 8, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))).astimezone(dt.UTC)
HOURS = 12


class _Fleet:
    """Devices that answer nothing and record every write (the daemon's write stage runs)."""

    def __init__(self) -> None:
        self.handles = defaultdict(lambda: SimpleNamespace(last_written={}))
        self.writes: list = []

    async def read_all(self, now_s: float):
        return {}, {}

    async def write_all(self, by_device, revert_s, now_s):
        self.writes.append(by_device)
        return {device: len(items) for device, items in by_device.items()}

    async def write_switches(self, by_device, now_s):
        self.writes.append(by_device)
        return {device: len(items) for device, items in by_device.items()}

    async def release_all(self, revert_s: float) -> None:
        raise AssertionError("the daemon released control: a stage failed")


class _Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.t, self.s = now, 0.0

    def now(self) -> dt.datetime:
        return self.t

    def monotonic(self) -> float:
        return self.s


class _TruthPlanner:
    """Plans synchronously from the true profiles with one persistent dispatcher."""

    def __init__(self, site, profiles) -> None:
        self.site, self.history = site, SimpleNamespace(profiles=profiles)
        self.dispatcher, self.done = Dispatcher(), None

    def submit(self, request: PlanRequest) -> bool:
        index = self.history.profiles.index_of(request.now)
        forecast = truth_forecaster(self.site, self.history, index, request.now)
        problem = build_problem(self.site, request.state, request.snapshot, forecast, request.now)
        self.done = FinishedPlan(request, self.dispatcher.solve(problem))
        return True

    def poll(self):
        done, self.done = self.done, None
        return done


def _simulate(site, profiles, tmp_path, monkeypatch, outages=()):
    monkeypatch.setattr(policies, "rolling_forecaster", truth_forecaster)
    steps = []

    def trace(k, now, snapshot, setpoints, counters):
        steps.append((now, snapshot, setpoints, counters))

    scenario = Scenario(site, profiles, START, START + dt.timedelta(hours=HOURS), outages=outages)
    result = run_policy(scenario, "rolling", trace=trace)
    path = write_ledger(tmp_path / "sim", result)
    return scenario, result, steps, path


def _samples(counters: dict) -> list[CounterSample]:
    return [CounterSample(member, channel, float(imp), float(exp))
            for (member, channel), (imp, exp) in counters.items()]


#: The relay variant: the store's and the mall's sheddable load behind relay boards, and an
#: unwarned outage at night, so the switch state machine sheds and restores on both sides.
OUTAGE = "2026-08-01T02:00/3h"


@pytest.mark.parametrize("variant", ["sunspec", "relays"])
async def test_daemon_cycle_and_simulator_loop_decide_and_settle_alike(tmp_path, monkeypatch, variant):
    if variant == "relays":
        site = load_site(write_relay_site(tmp_path))
        outages = (parse_outage(OUTAGE, "Asia/Tokyo"),)
    else:
        site, outages = load_site(REPO / "configs" / "misono.yaml"), ()
    profiles = synthetic_profiles(site, START - dt.timedelta(days=HISTORY_DAYS),
                                  START + dt.timedelta(hours=HOURS + 1), 900.0, seed=3)
    (tmp_path / "sim").mkdir()
    scenario, result, steps, sim_ledger_path = _simulate(site, profiles, tmp_path, monkeypatch, outages)
    if variant == "relays":  # the switches did switch: off in the outage, back on after it
        commands = [[c.on for c in sp.switch_commands] for _now, _snap, sp, _c in steps]
        assert all(len(c) == 5 for c in commands) and any(not all(c) for c in commands) and all(commands[-1])
    control_site = scenario.site_for_control
    billing, _ = policies.prior_billing(site, profiles, profiles.index_of(START), START)

    current: dict = {}
    monkeypatch.setattr(cycle_module, "build_snapshot", lambda *_a: current["snapshot"])
    monkeypatch.setattr(cycle_module, "counter_samples", lambda *_a: current["samples"])
    clock = _Clock(START)
    ledger = Ledger(tmp_path / "daemon.sqlite", site.site.id, clock=clock.now)
    recorder = Recorder(expected_channels(site), site.market.grace_period_s,
                        LedgerPeriods(site, ledger), optional_channels=pv_channels(site))
    fleet = _Fleet()
    cycle = cycle_module.Cycle(control_site, clock, fleet, _TruthPlanner(control_site, profiles),
                               HistoryForecaster(control_site), recorder,
                               TelemetryRecorder(site.site.id, 60.0, None),
                               initial_state(START, billing=billing))
    mismatches = []
    for k, (now, snapshot, setpoints, counters) in enumerate(steps):
        clock.t, clock.s = now, (now - START).total_seconds()
        current.update(snapshot=snapshot, samples=_samples(counters))
        report = await cycle.run_once()
        assert report.healthy, report.stage_faults
        if report.decision.setpoints != setpoints:
            mismatches.append(k)
    assert not mismatches, f"setpoints differ in cycles {mismatches[:5]}"
    assert len(steps) == HOURS * 4 and sum(len(w) for w in fleet.writes) > 0
    # One more cycle at the end closes the last period on the daemon's side too.
    end = START + dt.timedelta(hours=HOURS)
    clock.t, clock.s = end, (end - START).total_seconds()  # both clocks: no wall-clock jump
    current.update(samples=_samples(_end_counters(result)))
    await cycle.run_once()
    sim_ledger = Ledger(sim_ledger_path, site.site.id)
    sim_entries = [(e.period_start_utc, e.kind, e.member_id, e.body_text, e.hash)
                   for e in sim_ledger.entries()]
    daemon_entries = [(e.period_start_utc, e.kind, e.member_id, e.body_text, e.hash)
                      for e in ledger.entries()]
    assert len({e[0] for e in sim_entries}) == HOURS * 2  # every period of the run, once
    assert daemon_entries == sim_entries
    _assert_pv_recorded_alike(site, ledger, sim_ledger, steps)


def _assert_pv_recorded_alike(site, daemon_ledger, sim_ledger, steps) -> None:
    """PV rides in the readings (their hash is in every period entry, so equal entries already
    mean equal PV); here, explicitly: each member's PV per period is the difference of the
    counters the daemon was fed at the period's boundaries, and the simulator recorded the same."""
    fed = {now: counters for now, _snap, _set, counters in steps}
    pv_members = [member for member, _ in pv_channels(site)]
    assert pv_members  # the reference site has PV
    produced = 0
    for settlement, revision in daemon_ledger.settlements():
        start, end = settlement.start_utc, settlement.start_utc + dt.timedelta(minutes=30)
        mine = daemon_ledger.readings(start, revision)
        theirs = sim_ledger.readings(start, sim_ledger.settlements(start, end)[0][1])
        assert mine.to_json() == theirs.to_json()
        for member in pv_members:
            reading = mine.channel(member, "pv")
            assert reading is not None and reading.complete
            if end in fed:  # the last boundary is fed after the traced steps
                assert reading.end_import_kwh - reading.start_import_kwh == (
                    fed[end][(member, "pv")][0] - fed[start][(member, "pv")][0])
            produced += reading.end_import_kwh > reading.start_import_kwh
    assert produced > 0  # a summer morning: some PV was counted


def _end_counters(result) -> dict:
    """The plant's counters at the end of the run (what the meters read at the last boundary)."""
    readings, _settlement = result.settlements[-1]
    return {(c.member_id, c.channel): (c.end_import_kwh, c.end_export_kwh) for c in readings.channels}
