"""The repeat limiter: one line per kind per interval, and the count of what it dropped."""

from __future__ import annotations

import logging

from gridctl.daemon.lifecycle.ratelog import RepeatFilter


def record(msg: str, level: int = logging.ERROR, name: str = "asyncio") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_repeats_are_dropped_for_the_interval_then_counted():
    now = [0.0]
    limiter = RepeatFilter(interval_s=60.0, clock=lambda: now[0])
    first = record("socket.accept() out of system resource\nsocket: <fd=7>")
    assert limiter.filter(first)
    passed = 0
    for i in range(19_780):
        now[0] = i * 120.0 / 19_780  # the field report: 19,780 lines in 2 minutes
        passed += limiter.filter(record(f"socket.accept() out of system resource\nsocket: <fd={i}>"))
    assert passed == 1  # at t = 60 s
    assert limiter.filter(record("operator connections at the cap"))  # another kind passes
    assert limiter.filter(record("socket.accept() out of system resource", logging.WARNING))
    now[0] = 200.0
    last = record("socket.accept() out of system resource")
    assert limiter.filter(last)
    assert "(repeated " in last.getMessage() and "times, not logged)" in last.getMessage()
