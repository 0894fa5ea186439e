"""A log line that repeats is written once, then at most once per interval with a count.

A fault that persists (a full disk, a flood of operator connections under file-descriptor
exhaustion) would otherwise write the same line every cycle or every ``accept()`` and drown the
one line that matters. Each kind of line has a key; its first occurrence passes, repeats within
the interval are counted, and the next line that passes says how many were dropped.

Two faces on one :class:`RepeatLimiter`:

- :class:`RateLimitedLog`: gridctl's own rate-limited lines, keyed explicitly
  (``suppressed=N`` appended);
- :class:`RepeatFilter`: a :class:`logging.Filter` for loggers gridctl does not write itself
  (asyncio's accept errors), keyed by logger, level and first line of the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

#: Default for gridctl's own persistent faults: at most one line per key every five minutes [s].
DEFAULT_INTERVAL_S = 300.0
#: Repeats of one kind of third-party line are dropped for this long after one passes [s].
REPEAT_INTERVAL_S = 60.0
#: Kinds remembered at most (the oldest memory is dropped beyond it).
_MAX_KINDS = 512


@dataclass
class _Seen:
    passed_s: float
    suppressed: int = 0


class RepeatLimiter:
    """Per key: pass the first occurrence, then one per ``interval_s``; count what is dropped.

    Parameters
    ----------
    interval_s : float
        Minimum time between two passing occurrences of one key [s].
    monotonic : callable returning float
        The clock [s] (the daemon's injected monotonic clock in tests).
    """

    def __init__(self, interval_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.monotonic = interval_s, monotonic
        self._seen: dict[Hashable, _Seen] = {}

    def admit(self, key: Hashable) -> int | None:
        """None when ``key`` is to be dropped, else how many were dropped since it last passed."""
        now_s = self.monotonic()
        seen = self._seen.get(key)
        if seen is not None and 0 <= now_s - seen.passed_s < self.interval_s:
            seen.suppressed += 1
            return None
        if seen is None and len(self._seen) >= _MAX_KINDS:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = _Seen(now_s)
        return seen.suppressed if seen is not None else 0

    def suppressed(self, key: Hashable) -> int:
        """Occurrences of ``key`` dropped since it last passed."""
        seen = self._seen.get(key)
        return seen.suppressed if seen is not None else 0


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
        self.logger = logger
        self._limiter = RepeatLimiter(interval_s, monotonic)

    def log(self, key: str, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless a line of ``key`` was logged within the interval.

        Returns True when the line was written. A written line after suppressed ones ends with
        ``suppressed=N``.
        """
        suppressed = self._limiter.admit(key)
        if suppressed is None:
            return False
        if suppressed:
            msg, args = msg + " suppressed=%d", (*args, suppressed)
        self.logger.log(level, msg, *args)
        return True

    def suppressed(self, key: str) -> int:
        """Lines of ``key`` suppressed since the last one written."""
        return self._limiter.suppressed(key)


class RepeatFilter(logging.Filter):
    """A logging filter: one record per (logger, level, first line of the message) per interval."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._limiter = RepeatLimiter(interval_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0])
        suppressed = self._limiter.admit(key)
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.msg} (repeated {suppressed} times, not logged)"
        return True


#: The daemon's shared filter (asyncio's accept errors and the operator server's lines).
REPEATS = RepeatFilter()


def limit_repeats(*loggers: logging.Logger) -> None:
    """Attach :data:`REPEATS` to ``loggers`` (idempotent)."""
    for logger in loggers:
        logger.addFilter(REPEATS)
