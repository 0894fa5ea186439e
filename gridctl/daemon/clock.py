"""Clocks for the daemon: the system clock, and a manual one that tests drive cycle by cycle.

The daemon schedules cycles on the monotonic clock (immune to wall-clock jumps) and stamps
readings, periods and ledger entries with the wall clock (tz-aware UTC).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Time source of the daemon."""

    def now(self) -> datetime:
        """Wall-clock time, tz-aware UTC."""

    def monotonic(self) -> float:
        """Monotonic seconds for scheduling [s]."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` [s]."""

    def track(self, work: concurrent.futures.Future) -> None:
        """Background work (a solve in the worker thread) started at the current time."""


class SystemClock:
    """The real clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def track(self, work: concurrent.futures.Future) -> None:
        """Real work takes real time: nothing to account for."""


class ManualClock:
    """A clock that moves only when told to, or when the daemon sleeps.

    ``sleep`` advances both clocks by the requested time at once, so a test runs hundreds of
    cycles in milliseconds. ``jump`` moves only the wall clock, as an NTP step would.

    Background work registered with ``track`` (the re-plan worker's solves) takes no manual
    time: ``sleep`` lets it finish (waiting in real time, up to ``work_wait_s``) before moving
    the clocks. Without this, how many solves beat their deadline would depend on how fast the
    machine is at that moment, since manual time races ahead of a real thread.

    Parameters
    ----------
    start : datetime
        Initial wall-clock time (tz-aware).
    work_wait_s : float
        Longest real wait for a piece of tracked work [s] (once: work still running then is
        left to run on in real time); 0 lets time run on without it (a test of a solver stuck
        past its deadline).
    """

    def __init__(self, start: datetime, work_wait_s: float = 120.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a tz-aware start time")
        self._now = start.astimezone(UTC)
        self._mono_s = 1000.0
        self.work_wait_s = work_wait_s
        self._work: list[concurrent.futures.Future] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono_s

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic clocks forward by ``seconds`` [s]."""
        self._mono_s += seconds
        self._now += timedelta(seconds=seconds)

    def jump(self, seconds: float) -> None:
        """Step the wall clock only (negative steps go back) by ``seconds`` [s]."""
        self._now += timedelta(seconds=seconds)

    def track(self, work: concurrent.futures.Future) -> None:
        """Let ``work`` finish before the clocks move on (see the class notes)."""
        self._work.append(work)

    async def sleep(self, seconds: float) -> None:
        pending = [w for w in self._work if not w.done()]
        self._work = []  # each piece of work is waited for once: a stuck one cannot stall every sleep
        if pending and self.work_wait_s > 0:
            await asyncio.to_thread(concurrent.futures.wait, pending, self.work_wait_s)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
