"""One control cycle: read, control, write, record.

The control stage is :func:`gridctl.controller.run_cycle`, the very loop the simulator
drives (mode transition, bookkeeping, plan intake, re-plan request, decision); the daemon
only supplies live readings, its worker-thread planner and the device writes.  Every stage
runs inside its own guard: an exception marks that stage's fault and the cycle carries on
with what it has (no snapshot: empty readings; no decision: control released to the devices'
own safe behaviour; no recording: retried next cycle).  The cycle never waits on the MILP.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridctl.config import SiteConfig
from gridctl.controller import Step, request_replan, run_cycle
from gridctl.controller.types import ControllerState, Decision, Setpoint, Snapshot
from gridctl.daemon.clock import Clock, ClockEvent, ClockGuard, TrustedTime
from gridctl.daemon.stages.fleet import Fleet
from gridctl.daemon.stages.forecasting import HistoryForecaster
from gridctl.daemon.stages.record import Recorder
from gridctl.daemon.stages.replan import ThreadPlanner
from gridctl.daemon.stages.snapshot import build_snapshot, counter_samples
from gridctl.daemon.stages.telemetry import TelemetryRecorder

log = logging.getLogger(__name__)

#: Stages without which the block is not being controlled (they gate the watchdog).
CONTROL_STAGES = frozenset({"snapshot", "control", "write"})


@dataclass
class CycleReport:
    """What one cycle did (kept as ``Cycle.last`` for status and tests).

    Attributes
    ----------
    at_utc : datetime
    duration_s : float
        Wall time of the cycle [s] (perf counter, for status and benchmarks).
    stage_faults : dict of str to str
        Faulted stages and why.
    device_faults : dict of str to str or None
    written : dict of str to int
        Setpoints written per device.
    switched : dict of str to int
        Switch channels written per device (changed ones, and all of them now and then).
    setpoints : list of (Setpoint, float)
        Each setpoint with the value actually written after clamping [kW].
    decision : Decision or None
    snapshot : Snapshot or None
        What the cycle read (for status views).
    settled : int
        Periods settled in this cycle.
    periods_pending : int
        Closed periods still waiting to be settled after this cycle.
    """

    at_utc: datetime
    duration_s: float = 0.0
    stage_faults: dict[str, str] = field(default_factory=dict)
    device_faults: dict[str, str | None] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    switched: dict[str, int] = field(default_factory=dict)
    setpoints: list[tuple[Setpoint, float]] = field(default_factory=list)
    decision: Decision | None = None
    released: bool = False
    settled: int = 0
    periods_pending: int = 0
    snapshot: Snapshot | None = None

    @property
    def healthy(self) -> bool:
        """Every control stage ran: the watchdog may be kicked.

        Device faults do not count: they are handled per device, and a restart would not
        bring a device back (it would only churn the service while the network is down).
        Nor do recording and planning faults: they are retried, and the fallback controls.
        """
        return not any(stage in CONTROL_STAGES for stage in self.stage_faults)


class Cycle:
    """Runs cycles over a site with an injected clock, fleet, planner and recorders."""

    def __init__(self, site: SiteConfig, clock: Clock, fleet: Fleet, planner: ThreadPlanner,
                 forecaster: HistoryForecaster, recorder: Recorder,
                 telemetry: TelemetryRecorder, state: ControllerState,
                 guard: ClockGuard | None = None) -> None:
        self.site, self.clock, self.forecaster = site, clock, forecaster
        #: Settlement time: the wall clock checked against the monotonic clock.
        self.guard = guard or ClockGuard()
        self.fleet, self.planner, self.recorder, self.telemetry = fleet, planner, recorder, telemetry
        self.state = state
        self.state_changed = True
        self.last: CycleReport | None = None
        self.count = 0
        #: Recent mode transitions (time, from, to, notes); the journal keeps the full history.
        self.transitions: deque[tuple[datetime, str, str, tuple[str, ...]]] = deque(maxlen=100)

    def set_state(self, state: ControllerState) -> None:
        """Replace the controller state (operator commands) and re-plan at the next cycle."""
        self.state, self.state_changed = request_replan(state), True

    async def run_once(self) -> CycleReport:
        """One full cycle."""
        started = time.perf_counter()
        now, now_s = self.clock.now(), self.clock.monotonic()
        report = CycleReport(at_utc=now)
        readings, faults = await self.fleet.read_all(now_s)
        report.device_faults = dict(faults)
        snapshot = self._guard(report, "snapshot", build_snapshot, self.site, readings, faults, now)
        if snapshot is None:
            snapshot = Snapshot(at_utc=now)
        report.snapshot = snapshot
        self._guard(report, "forecast", self.forecaster.observe, snapshot)
        result = self._guard(report, "control", run_cycle, self.site, self.state, snapshot, now,
                             self.planner)
        if result is not None:
            self._adopt(result, now)
        await self._write(report, result.decision if result else None, now_s)
        self._guard(report, "record", self._record, readings, snapshot, now, now_s, report)
        self.count += 1
        report.duration_s = time.perf_counter() - started
        self.last = report
        return report

    def _guard(self, report: CycleReport, stage: str, fn, *args) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # a failing stage faults alone; the cycle goes on
            report.stage_faults[stage] = f"{type(exc).__name__}: {exc}"
            log.warning("stage fault stage=%s error=%s", stage, report.stage_faults[stage],
                        exc_info=log.isEnabledFor(logging.DEBUG))
            return None

    def _adopt(self, result: Step, now: datetime) -> None:
        """Keep the step's state; log and record a mode change and an accepted plan."""
        tr = result.transition
        if tr.changed:
            before, after = self.state.mode.value, tr.state.mode.value
            self.transitions.append((now, before, after, tuple(tr.notes)))
            log.warning("mode transition from=%s to=%s signal=%s notes=%r", before, after,
                        tr.signal.value, "; ".join(tr.notes))
            try:
                self.telemetry.transition(before, after, tuple(tr.notes), now)
            except Exception as exc:  # the journal still has it; control must not wait on disk
                log.error("transition not recorded error=%s", exc)
        if result.accepted is not None:
            log.info("plan accepted status=%s", result.accepted.status.value)
        if result.state is not self.state:
            self.state, self.state_changed = result.state, True

    async def _write(self, report: CycleReport, decision: Decision | None, now_s: float) -> None:
        revert_s = self.site.control.setpoint_expiry_s
        if decision is None:
            report.released = True
            await self.fleet.release_all(revert_s)
            return
        report.decision = decision
        by_device: dict[str, list[Setpoint]] = defaultdict(list)
        for sp in decision.setpoints.items:
            by_device[sp.device_id].append(sp)
        switches: dict[str, list] = defaultdict(list)
        for command in decision.setpoints.switch_commands:
            switches[command.device_id].append(command)
        try:
            report.written = await self.fleet.write_all(by_device, revert_s, now_s)
            if switches:
                report.switched = await self.fleet.write_switches(switches, now_s)
        except Exception as exc:  # a bad setpoint (unknown device kind) faults the stage
            report.stage_faults["write"] = f"{type(exc).__name__}: {exc}"
            return
        for device_id, count in report.written.items():
            handle = self.fleet.handles[device_id]
            for sp in by_device.get(device_id, [])[:count]:
                report.setpoints.append((sp, handle.last_written.get((sp.kind, sp.leg_id), sp.value_kw)))

    def _record(self, readings, snapshot: Snapshot, now: datetime, now_s: float,
                report: CycleReport) -> None:
        trusted = self.trusted_now(now, now_s)
        self.recorder.observe(trusted, counter_samples(self.site, readings))
        report.settled = self.recorder.settle_due(trusted)
        report.periods_pending = self.recorder.backlog()
        self.telemetry.observe(snapshot, self.state, report, now)

    def trusted_now(self, wall: datetime | None = None, mono_s: float | None = None) -> datetime:
        """The time periods are closed and settled by (see :class:`ClockGuard`); logs jumps."""
        wall = self.clock.now() if wall is None else wall
        mono_s = self.clock.monotonic() if mono_s is None else mono_s
        seen = self.guard.observe(wall, mono_s)
        _log_clock(seen, self.guard.accept_after_s)
        return seen.now_utc

    def replace_state(self, **changes: Any) -> ControllerState:
        """A copy of the current state with ``changes`` applied (operator commands)."""
        return dataclasses.replace(self.state, **changes)


def _log_clock(seen: TrustedTime, accept_after_s: float) -> None:
    """Say loudly when the wall clock steps, stays off (rate-limited), comes back or is accepted."""
    wall, trusted = seen.wall_utc.isoformat(), seen.now_utc.isoformat()
    if seen.event is ClockEvent.JUMPED:
        log.error("wall clock jumped jump_s=%+.1f wall=%s: settling by the monotonic clock "
                  "trusted=%s", seen.offset_s, wall, trusted)
    elif seen.event is ClockEvent.STILL_OFF:
        log.error("wall clock still off jump_s=%+.1f off_for_s=%.0f wall=%s trusted=%s: "
                  "accepted once it keeps its own pace for %.0f s", seen.offset_s,
                  seen.off_for_s, wall, trusted, accept_after_s)
    elif seen.event is ClockEvent.RECOVERED:
        log.warning("wall clock back in agreement with the monotonic clock wall=%s", wall)
    elif seen.event is ClockEvent.ACCEPTED:
        log.error("wall clock step accepted as a correction jump_s=%+.1f wall=%s trusted=%s",
                  seen.offset_s, wall, trusted)
