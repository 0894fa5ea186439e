"""Clocks for the daemon: the system clock, and a manual one that tests drive cycle by cycle.

The daemon schedules cycles on the monotonic clock (immune to wall-clock jumps) and stamps
readings, periods and ledger entries with the wall clock (tz-aware UTC). The
:class:`ClockGuard` checks the wall clock against a monotonic anchor each cycle, so a stepped
wall clock never closes a settlement period early (see its notes for how a correction is
accepted).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
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


# -- wall-clock jumps ------------------------------------------------------------------------
#: A wall clock within this of the monotonic estimate agrees with it [s] (NTP slews far less).
JUMP_TOLERANCE_S = 2.0
#: A stepped wall clock that keeps its own pace this long is accepted as corrected [s].
ACCEPT_AFTER_S = 600.0
#: While the wall clock is off, the error is repeated at most this often [s].
REPORT_EVERY_S = 60.0


class ClockEvent(Enum):
    """What one look at the wall clock found."""

    NONE = "none"  #: agrees with the monotonic estimate (or still off, nothing new to say)
    JUMPED = "jumped"  #: just stepped away from the estimate
    STILL_OFF = "still_off"  #: still off (a rate-limited reminder)
    RECOVERED = "recovered"  #: back in agreement with the estimate
    ACCEPTED = "accepted"  #: held its own pace for ``accept_after_s``: re-anchored to it


@dataclass(frozen=True)
class TrustedTime:
    """The time recording and settlement may use, and how the wall clock compares.

    Attributes
    ----------
    now_utc : datetime
        Trusted time (tz-aware UTC): the wall clock while it agrees with the monotonic
        estimate, else the estimate; never earlier than a previous trusted time.
    wall_utc : datetime
        What the wall clock said.
    offset_s : float
        Wall clock minus the monotonic estimate [s], positive: the wall clock is ahead.
    wall_ok : bool
        True when the wall clock is trusted (agrees, or was just accepted).
    off_for_s : float
        How long the wall clock has disagreed [s] (0 when it is trusted).
    event : ClockEvent
    """

    now_utc: datetime
    wall_utc: datetime
    offset_s: float
    wall_ok: bool
    off_for_s: float
    event: ClockEvent


class ClockGuard:
    """Detects wall-clock steps against a monotonic anchor; pure (the caller logs).

    The anchor is a (wall, monotonic) pair from the last sample that agreed with it, so the
    estimate ``anchor_wall + (mono - anchor_mono)`` follows the slow slewing NTP does. A wall
    clock more than ``tolerance_s`` away from the estimate has jumped: the estimate is trusted
    instead, in either direction, so no period is closed before it really ended. When the wall
    clock comes back, it is trusted again at once. A wall clock that keeps its own pace (a
    step that was a correction, e.g. a wrong RTC at boot fixed by NTP) for ``accept_after_s``
    becomes the new anchor. Trusted time never goes back: after a backward correction it holds
    until the wall clock catches up.

    Parameters
    ----------
    tolerance_s : float
        Largest disagreement that is not a jump [s].
    accept_after_s : float
        How long a stepped wall clock must keep its own pace to be accepted [s].
    report_every_s : float
        Interval of :attr:`ClockEvent.STILL_OFF` reminders while the wall clock is off [s].
    """

    def __init__(self, tolerance_s: float = JUMP_TOLERANCE_S,
                 accept_after_s: float = ACCEPT_AFTER_S,
                 report_every_s: float = REPORT_EVERY_S) -> None:
        self.tolerance_s, self.accept_after_s = tolerance_s, accept_after_s
        self.report_every_s = report_every_s
        self._anchor: tuple[datetime, float] | None = None
        self._candidate: tuple[datetime, float] | None = None  # the stepped clock on probation
        self._off_since_s: float | None = None
        self._reported_s = 0.0
        self._trusted: datetime | None = None
        self.last: TrustedTime | None = None

    def observe(self, wall: datetime, mono_s: float) -> TrustedTime:
        """Compare ``wall`` (tz-aware) with the estimate at monotonic ``mono_s`` [s]."""
        wall = wall.astimezone(UTC)
        if self._anchor is None:
            self._anchor = (wall, mono_s)
        offset_s = _offset_s(wall, mono_s, self._anchor)
        if abs(offset_s) <= self.tolerance_s:
            event = ClockEvent.RECOVERED if self._off_since_s is not None else ClockEvent.NONE
            self._agree(wall, mono_s)
            return self._result(wall, wall, offset_s, True, 0.0, event)
        event = self._disagree(wall, mono_s)
        if event is ClockEvent.ACCEPTED:
            return self._result(wall, wall, offset_s, True, 0.0, event)
        estimate = self._anchor[0] + timedelta(seconds=mono_s - self._anchor[1])
        off_for_s = mono_s - self._off_since_s if self._off_since_s is not None else 0.0
        return self._result(estimate, wall, offset_s, False, off_for_s, event)

    def _agree(self, wall: datetime, mono_s: float) -> None:
        self._anchor, self._candidate, self._off_since_s = (wall, mono_s), None, None

    def _disagree(self, wall: datetime, mono_s: float) -> ClockEvent:
        if self._off_since_s is None:
            self._off_since_s = self._reported_s = mono_s
            self._candidate = (wall, mono_s)
            return ClockEvent.JUMPED
        assert self._candidate is not None
        if abs(_offset_s(wall, mono_s, self._candidate)) > self.tolerance_s:
            self._candidate = (wall, mono_s)  # stepped again: its probation starts over
        elif mono_s - self._candidate[1] >= self.accept_after_s:
            self._agree(wall, mono_s)
            return ClockEvent.ACCEPTED
        if mono_s - self._reported_s >= self.report_every_s:
            self._reported_s = mono_s
            return ClockEvent.STILL_OFF
        return ClockEvent.NONE

    def _result(self, trusted: datetime, wall: datetime, offset_s: float, wall_ok: bool,
                off_for_s: float, event: ClockEvent) -> TrustedTime:
        if self._trusted is not None and trusted < self._trusted:
            trusted = self._trusted
        self._trusted = trusted
        self.last = TrustedTime(trusted, wall, offset_s, wall_ok, off_for_s, event)
        return self.last


def _offset_s(wall: datetime, mono_s: float, anchor: tuple[datetime, float]) -> float:
    """``wall`` minus the time ``anchor`` predicts at ``mono_s`` [s]."""
    return (wall - anchor[0]).total_seconds() - (mono_s - anchor[1])
