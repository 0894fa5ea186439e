"""A log line that repeats is written once, then at most once per interval with a count.

A fault that persists (a full disk) would otherwise write the same line every cycle and
flood the journal. Each kind of line has a key: its first occurrence is logged at once;
repeats within ``interval_s`` are counted, and the next line logged after the interval says
how many were suppressed (``suppressed=N``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Default: at most one line per key every five minutes [s].
DEFAULT_INTERVAL_S = 300.0


class RateLimitedLog:
    """Rate-limited logging onto ``logger``, per key.

    Parameters
    ----------
    logger : logging.Logger
    interval_s : float
        Minimum time between two lines of the same key [s].
    monotonic : callable returning float
        The clock [s] (the daemon's injected monotonic clock).
    """

    def __init__(self, logger: logging.Logger, interval_s: float = DEFAULT_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval_s, self.monotonic = logger, interval_s, monotonic
        self._last_s: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, key: str, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless a line of ``key`` was logged within the interval.

        Returns True when the line was written. A written line after suppressed ones ends with
        ``suppressed=N``.
        """
        now_s = self.monotonic()
        last_s = self._last_s.get(key)
        if last_s is not None and 0 <= now_s - last_s < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last_s[key] = now_s
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg, args = msg + " suppressed=%d", (*args, suppressed)
        self.logger.log(level, msg, *args)
        return True

    def suppressed(self, key: str) -> int:
        """Lines of ``key`` suppressed since the last one written."""
        return self._suppressed.get(key, 0)
