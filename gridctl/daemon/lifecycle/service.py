"""The daemon's life: start-up, the cycle loop, operator commands, two-stage shutdown.

Start-up restores the persisted controller and recorder state (a restart resumes the mode,
plan, reserve request and period boundaries), opens the operator socket, runs the first cycle
and only then tells systemd READY. The loop runs one cycle per poll period on the monotonic
clock (a wall-clock jump neither skips nor doubles cycles) and kicks the watchdog only after a
healthy cycle. The first SIGTERM/SIGINT stops the loop: devices are handed back to their own
safe behaviour, due periods are settled and the state is flushed; a second signal exits at
once (the ledger is crash-safe on its own). Alongside the loop, the outbox shipper runs its
own loop (:mod:`gridctl.daemon.lifecycle.shipping`); the cycle never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridctl.config import SiteConfig
from gridctl.controller import initial_state
from gridctl.controller.types import BillingState, ControllerState, OutageWindow, ReserveRequest
from gridctl.daemon.clock import Clock
from gridctl.daemon.lifecycle.guard import DaemonGuard, StartRefusedError, guard_site
from gridctl.daemon.lifecycle.notify import Notifier
from gridctl.daemon.lifecycle.operator import Command, OperatorServer, ProtocolError
from gridctl.daemon.lifecycle.storage import STORAGE_ERRORS, StorageHealth, Store
from gridctl.daemon.lifecycle.persist import (
    FORECAST_KEY,
    RECORDER_KEY,
    STATE_KEY,
    StateStore,
    state_from_json,
    state_to_json,
)
from gridctl.daemon.stages.cycle import Cycle, CycleReport
from gridctl.daemon.stages.fleet import DriverFactory, Fleet
from gridctl.daemon.stages.forecasting import HistoryForecaster
from gridctl.daemon.stages.record import PeriodSink, Recorder, RecorderState
from gridctl.daemon.stages.replan import ThreadPlanner
from gridctl.daemon.stages.snapshot import expected_channels, pv_channels
from gridctl.daemon.stages.telemetry import TelemetryRecorder, TelemetrySink
from gridctl.settlement.timing import fixed_point_channels

if TYPE_CHECKING:
    from gridctl.daemon.lifecycle.shipping import Shipper

log = logging.getLogger(__name__)

#: A planned islanding requested by the operator lasts until ``gridctl reconnect`` or this [h].
OPERATOR_ISLAND_MAX_H = 7 * 24
#: Persist the controller state at least this often even without a change [s].
PERSIST_EVERY_S = 60.0


@dataclass
class Parts:
    """Everything the daemon composes.

    Built by :func:`~gridctl.daemon.lifecycle.build.build_daemon`.
    """

    site: SiteConfig
    factory: DriverFactory
    solve: Callable[[Any], Any]
    store: StateStore
    periods: PeriodSink
    telemetry_sink: TelemetrySink | None
    clock: Clock
    notifier: Notifier
    socket_path: Path | None
    shipper: Shipper | None = None
    #: The billing context of a first start: ``opening(now) -> BillingState``.
    opening: Callable[[datetime], BillingState] | None = None
    #: The ledger file and the runtime directory the daemon's locks go to
    #: (:mod:`~gridctl.daemon.lifecycle.guard`); None for either: no guard (tests only).
    ledger_path: Path | None = None
    runtime_dir: Path | None = None
    #: Shared with the ledger adapters: failing writes, logged rate-limited (None: a new one).
    storage: StorageHealth | None = None


class Daemon:
    """``gridctl run``: owns the cycle, the operator socket and the lifecycle."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        site, clock = parts.site, parts.clock
        self.storage = parts.storage or StorageHealth(clock)
        now = clock.now()
        state = self._restore_state(now)
        recorder_json = parts.store.get(RECORDER_KEY)
        recorder = Recorder(expected_channels(site), site.market.grace_period_s, parts.periods,
                            RecorderState.from_json(recorder_json) if recorder_json else None,
                            optional_channels=pv_channels(site),
                            fixed_channels=fixed_point_channels(site))
        self.fleet = Fleet(site, parts.factory)
        forecaster = HistoryForecaster(site)
        self.planner = ThreadPlanner(site, parts.solve, forecaster, clock)
        self.telemetry = TelemetryRecorder(site.site.id, site.storage.telemetry_period_s,
                                           parts.telemetry_sink)
        self.cycle = Cycle(site, clock, self.fleet, self.planner, forecaster, recorder,
                           self.telemetry, state)
        self._forecast_saved: datetime | None = None
        self._restore_forecast()
        self.stop_event = asyncio.Event()
        self._ship_stop = asyncio.Event()
        self.signals = 0
        self.started_s = clock.monotonic()
        self._persisted_s = -1e18
        self.operator: OperatorServer | None = None

    def _restore_state(self, now: datetime) -> ControllerState:
        text = self.parts.store.get(STATE_KEY)
        if text:
            try:
                state = state_from_json(text)
                log.info("state restored mode=%s plan=%s", state.mode.value, state.plan is not None)
                return state
            except (ValueError, KeyError, TypeError) as exc:
                log.error("persisted state unreadable, starting fresh error=%s", exc)
        opening = self.parts.opening(now) if self.parts.opening is not None else None
        return initial_state(now, billing=opening)

    def _restore_forecast(self) -> None:
        forecaster = self.cycle.forecaster
        text = self.parts.store.get(FORECAST_KEY)
        if not text:
            return
        try:
            loaded = forecaster.restore(text)
            log.info("forecast history restored bins=%d", loaded)
        except (ValueError, KeyError, TypeError) as exc:  # a forecast is not worth a failed start
            log.error("saved forecast history unreadable, starting from typical days error=%s", exc)

    def _save_forecast(self, force: bool) -> None:
        """Save the forecast history once per settlement period (and at shutdown)."""
        now = self.parts.clock.now()
        period = now.replace(minute=now.minute - now.minute % 30, second=0, microsecond=0)
        forecaster = self.cycle.forecaster
        if not force and period == self._forecast_saved:
            return
        try:
            text = forecaster.export()
            if text is not None:
                self.parts.store.put(FORECAST_KEY, text, now)
        except STORAGE_ERRORS as exc:  # a full disk: retried next period, logged rate-limited
            self.storage.failed(Store.LEDGER, exc)
            self._forecast_saved = period
            return
        except Exception as exc:  # retried next cycle; control does not depend on it
            log.warning("forecast history not saved error=%s", exc)
            return
        self._forecast_saved = period

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self, duration_s: float | None = None,
                  on_cycle: Callable[[CycleReport], None] | None = None) -> int:
        """Run until stopped (signal, ``stop()`` or ``duration_s`` [s]); returns an exit code."""
        clock = self.parts.clock
        guard = await self._start_guarded()
        self._install_signals()
        shipping = self._start_shipping()
        next_s = clock.monotonic()
        first = True
        try:
            while not self.stop_event.is_set():
                report = await self.cycle.run_once()
                self._after_cycle(report, first)
                first = False
                if on_cycle is not None:
                    on_cycle(report)
                if duration_s is not None and clock.monotonic() - self.started_s >= duration_s:
                    break
                next_s += self.parts.site.control.poll_period_s
                now_s = clock.monotonic()
                if next_s < now_s:  # overran: skip the missed slots rather than burst
                    next_s = now_s
                await self._sleep(next_s - now_s)
        finally:
            await self._stop_shipping(shipping)
            try:
                await self.shutdown()
            finally:
                self._remove_signals()  # a second signal during shutdown still exits at once
                guard.release()
        return 0

    async def _start_guarded(self) -> DaemonGuard:
        """Hold the site and ledger locks and open the operator socket, or refuse to start.

        Raises :class:`StartRefusedError` (one line) before any device is touched: another
        daemon controls the block, or there would be no operator path into this one.
        """
        parts = self.parts
        guard = DaemonGuard(())
        if parts.ledger_path is not None and parts.runtime_dir is not None:
            guard = guard_site(parts.site.site.id, parts.ledger_path, parts.runtime_dir)
        if parts.socket_path is None:
            return guard
        self.operator = OperatorServer(parts.socket_path, self.handle)
        try:
            await self.operator.start()
        except StartRefusedError:
            guard.release()
            raise
        except OSError as exc:
            guard.release()
            raise StartRefusedError(
                f"{parts.socket_path}: cannot create the operator socket "
                f"({exc.strerror or exc}); refusing to run without an operator path") from None
        return guard

    def _start_shipping(self) -> asyncio.Task | None:
        """The outbox shipper's own loop in the background (None without a shipper)."""
        if self.parts.shipper is None:
            return None
        self._ship_stop.clear()
        return asyncio.create_task(self.parts.shipper.run(self._ship_stop), name="outbox")

    async def _stop_shipping(self, task: asyncio.Task | None) -> None:
        """Stop the shipper's loop at once (a round on the wire is not waited for)."""
        if task is None:
            return
        self._ship_stop.set()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task

    def _after_cycle(self, report: CycleReport, first: bool) -> None:
        notifier = self.parts.notifier
        if report.healthy:
            notifier.watchdog()
        if first:
            notifier.ready(self.status_line())
        elif self.cycle.count % 10 == 0:
            notifier.status(self.status_line())
        self._persist(force=self.cycle.state_changed or self.cycle.recorder.dirty)
        self._save_forecast(force=False)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self.parts.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self.stop_event.wait())
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeper, stopper):
            task.cancel()

    def stop(self) -> None:
        """Ask the loop to stop after the current cycle (first stage of shutdown)."""
        self.stop_event.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        self.signals += 1
        if self.signals == 1:
            log.warning("signal received, stopping safely signal=%s", signal.Signals(sig).name)
            self.parts.notifier.stopping("stopping: releasing devices, flushing ledger")
            self.stop()
        else:
            log.error("second signal, exiting now signal=%s", signal.Signals(sig).name)
            os._exit(1)

    async def shutdown(self) -> None:
        """Safe setpoints (devices back to their own control), settle what is due, flush."""
        with contextlib.suppress(Exception):
            await self.fleet.release_all(self.parts.site.control.setpoint_expiry_s)
        try:
            self.cycle.recorder.settle_due(self.cycle.trusted_now())
        except Exception as exc:  # settled next start: boundaries are persisted
            log.warning("settlement at shutdown deferred error=%s", exc)
        self._persist(force=True)
        self._save_forecast(force=True)
        shipper = self.parts.shipper
        if shipper is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await shipper.flush()
        if self.operator is not None:
            await self.operator.close()
        await self.fleet.close()
        self.planner.close()
        if shipper is not None:
            shipper.close()
        log.info("stopped cycles=%d", self.cycle.count)

    def _persist(self, force: bool) -> None:
        now_s = self.parts.clock.monotonic()
        if not force and now_s - self._persisted_s < PERSIST_EVERY_S:
            return
        now = self.parts.clock.now()
        try:
            self.parts.store.put(STATE_KEY, state_to_json(self.cycle.state), now)
            self.parts.store.put(RECORDER_KEY, self.cycle.recorder.state.to_json(), now)
        except STORAGE_ERRORS as exc:  # a full disk: the next cycle tries again, logged rate-limited
            self.storage.failed(Store.LEDGER, exc)
            return
        except Exception as exc:  # the next cycle tries again
            log.error("state not persisted error=%s", exc)
            return
        self.storage.succeeded()
        self._persisted_s = now_s
        self.cycle.state_changed = False
        self.cycle.recorder.dirty = False

    # -- operator commands --------------------------------------------------------------------
    async def handle(self, command: Command) -> dict[str, Any]:
        """Apply one operator command; ``status`` changes nothing."""
        now = self.parts.clock.now()
        if command.cmd == "reserve":
            if command.at <= now:
                raise ProtocolError("until: must be in the future")
            self.cycle.set_state(self.cycle.replace_state(
                reserve_request=ReserveRequest(hours_h=command.hours_h, until_utc=command.at)))
        elif command.cmd == "island":
            at = max(command.at, now)
            window = OutageWindow(at, at + timedelta(hours=OPERATOR_ISLAND_MAX_H), "operator")
            kept = tuple(w for w in self.cycle.state.outage_windows if w.reason != "operator")
            self.cycle.set_state(self.cycle.replace_state(outage_windows=kept + (window,)))
        elif command.cmd == "reconnect":
            ended = tuple(_end_window(w, now) for w in self.cycle.state.outage_windows)
            self.cycle.set_state(self.cycle.replace_state(
                outage_windows=tuple(w for w in ended if w is not None)))
        if command.cmd != "status":
            self._persist(force=True)
        return self.status()

    def status(self) -> dict[str, Any]:
        """The daemon as operators see it (JSON-ready)."""
        from gridctl.daemon.lifecycle.status import status_of

        return status_of(self)

    def status_line(self) -> str:
        """One line for systemd's STATUS, led by the health (``degraded: 3/27 devices ok; ...``)."""
        from gridctl.daemon.lifecycle.status import daemon_health

        last = self.cycle.last
        health, ok, devices = daemon_health(self)
        ms = f"{last.duration_s * 1000:.0f} ms" if last else "-"
        return (f"{health.value}: {ok}/{devices} devices ok; {self.cycle.state.mode.value}; "
                f"cycle {ms}; {self.cycle.recorder.backlog()} periods pending")


def _end_window(window: OutageWindow, now: datetime) -> OutageWindow | None:
    """A warned outage cut at ``now`` (None when it has not started yet)."""
    if window.start_utc >= now:
        return None
    if window.end_utc <= now:
        return window
    return OutageWindow(window.start_utc, now, window.reason)
