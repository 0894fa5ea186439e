"""At most one log line per kind per interval: a flood must not drown the journal.

Under file-descriptor exhaustion asyncio reports every failed ``accept()`` and a flood of
operator connections would log every refusal; the same line thousands of times hides the one
line that matters. :class:`RepeatFilter` lets the first record of a kind through, drops the
repeats for ``interval_s`` and tells on the next line that passes how many it dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Repeats of one kind of line are dropped for this long after one is logged [s].
REPEAT_INTERVAL_S = 60.0
#: Kinds remembered at most (the oldest memory is dropped beyond it).
_MAX_KINDS = 512


@dataclass
class _Seen:
    logged_s: float
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """A logging filter: one record per (logger, level, first line of the message) per interval.

    Parameters
    ----------
    interval_s : float
        Repeats within this time [s] after a logged record are dropped and counted.
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s, self._clock = interval_s, clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0])
        now_s = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now_s - seen.logged_s < self.interval_s:
            seen.suppressed += 1
            return False
        if seen is not None and seen.suppressed:
            record.msg = f"{record.msg} (repeated {seen.suppressed} times, not logged)"
        if len(self._seen) >= _MAX_KINDS and key not in self._seen:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = _Seen(now_s)
        return True


#: The daemon's shared limiter (asyncio's accept errors and the operator server's lines).
REPEATS = RepeatFilter()


def limit_repeats(*loggers: logging.Logger) -> None:
    """Attach :data:`REPEATS` to ``loggers`` (idempotent)."""
    for logger in loggers:
        logger.addFilter(REPEATS)
