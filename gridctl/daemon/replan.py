"""The re-plan worker: the MILP runs in its own thread with a deadline; the cycle never waits.

One solve at a time on a persistent solver (the model is built once and updated in place, so
it stays in one long-lived worker thread). ``poll`` is called each cycle and returns a finished
plan at most once. A solve that overruns its deadline is abandoned: its plan is discarded when
it eventually arrives, a fault is reported, and the cycle keeps using the last plan or the
rule-based fallback. No new solve starts while an abandoned one still occupies the worker.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class PlannerStats:
    """Counters of the worker (for status and benchmarks)."""

    started: int = 0
    finished: int = 0
    timed_out: int = 0
    failed: int = 0
    last_solve_s: float | None = None


class Planner:
    """Runs ``solve(problem)`` off the event loop with a deadline.

    Parameters
    ----------
    solve : callable
        ``solve(problem) -> plan``; blocking, run in the worker thread after the problem is
        built there too.
    deadline_s : float
        A solve still running this long after it started is abandoned [s].
    track : callable, optional
        ``track(future)`` is told of each solve started (the daemon's clock: a manual clock
        in tests lets the solve finish before time moves on).
    """

    def __init__(self, solve: Callable[[Any], Any], deadline_s: float,
                 track: Callable[[concurrent.futures.Future], None] | None = None) -> None:
        self._solve = solve
        self.deadline_s = deadline_s
        self._track = track
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="replan")
        self._future: concurrent.futures.Future | None = None
        self._started_s = 0.0
        self._abandoned = False
        self.stats = PlannerStats()
        self.fault: str | None = None

    @property
    def busy(self) -> bool:
        return self._future is not None

    def submit(self, make_problem: Callable[[], Any], now_s: float) -> bool:
        """Build the problem with ``make_problem()`` and solve it in the worker, unless one runs.

        Returns True when started.
        """
        if self._future is not None:
            return False
        self._future = self._pool.submit(lambda: self._solve(make_problem()))
        if self._track is not None:
            self._track(self._future)
        self._started_s, self._abandoned = now_s, False
        self.stats.started += 1
        return True

    def poll(self, now_s: float) -> Any | None:
        """The finished plan (once), or None; abandons an overdue solve."""
        future = self._future
        if future is None:
            return None
        if not future.done():
            if not self._abandoned and now_s - self._started_s > self.deadline_s:
                self._abandoned = True
                self.stats.timed_out += 1
                self.fault = f"solver missed its {self.deadline_s:g} s deadline"
                log.warning("re-plan abandoned deadline_s=%g", self.deadline_s)
            return None
        self._future = None
        self.stats.last_solve_s = now_s - self._started_s
        if self._abandoned:
            return None  # too late to trust: the state it planned from is gone
        try:
            plan = future.result()
        except Exception as exc:  # a solver crash is a fault of this stage only
            self.stats.failed += 1
            self.fault = f"solver failed: {type(exc).__name__}: {exc}"
            log.warning("re-plan failed error=%s", exc)
            return None
        self.stats.finished += 1
        self.fault = None
        return plan

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
