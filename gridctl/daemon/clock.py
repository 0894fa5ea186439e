"""Clocks for the daemon: the system clock, and a manual one that tests drive cycle by cycle.

The daemon schedules cycles on the monotonic clock (immune to wall-clock jumps) and stamps
readings, periods and ledger entries with the wall clock (tz-aware UTC).
"""

from __future__ import annotations

import asyncio
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


class SystemClock:
    """The real clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to, or when the daemon sleeps.

    ``sleep`` advances both clocks by the requested time at once, so a test runs hundreds of
    cycles in milliseconds. ``jump`` moves only the wall clock, as an NTP step would.

    Parameters
    ----------
    start : datetime
        Initial wall-clock time (tz-aware).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a tz-aware start time")
        self._now = start.astimezone(UTC)
        self._mono_s = 1000.0

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

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
