"""The rate-limited log: first line at once, then at most one per interval with a count."""

from __future__ import annotations

import logging

from gridctl.daemon.lifecycle.ratelog import RateLimitedLog


class Ticks:
    """A monotonic clock the test advances [s]."""

    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s


def test_repeats_are_counted_and_logged_once_per_interval(caplog):
    ticks = Ticks()
    limited = RateLimitedLog(logging.getLogger("test.ratelog"), 300.0, ticks)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        written = []
        for _ in range(700):  # one cycle every second for 700 s
            written.append(limited.log("disk", logging.ERROR, "write failed error=%s", "full"))
            ticks.s += 1.0
        limited.log("other", logging.WARNING, "another key")
    lines = [r.getMessage() for r in caplog.records]
    assert written.count(True) == 3  # at 0 s, 300 s and 600 s
    assert lines == ["write failed error=full", "write failed error=full suppressed=299",
                     "write failed error=full suppressed=299", "another key"]
    assert limited.suppressed("disk") == 99
