"""The daemon's planner: forecast, problem and MILP in a worker thread with a deadline.

It is the :class:`gridctl.controller.Planner` that :func:`gridctl.controller.run_cycle`
hands plan requests to; the cycle never waits on it.  One solve at a time on a persistent
solver (the model is built once and updated in place, so it stays in one long-lived worker
thread).  ``poll`` returns a finished plan at most once.  A solve that overruns its deadline
is abandoned: its plan is discarded when it eventually arrives, a fault is reported, and the
controller keeps the last plan or the rule-based fallback.  No new solve starts while an
abandoned one still occupies the worker.

After each solve the worker hands the C heap's free pages back to the system
(:func:`release_free_heap`): the solve's temporaries are freed in the worker thread's own
malloc arena, which glibc otherwise keeps (measured at 100 homes: about 70 MB of RSS).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridctl.config import SiteConfig
from gridctl.controller import FinishedPlan, PlanRequest, build_problem, plan_deadline_s
from gridctl.daemon.clock import Clock

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_heap() -> bool:
    """Return the free pages of every malloc arena to the system; True when it could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@dataclass
class PlannerStats:
    """Counters of the worker (for status and benchmarks)."""

    started: int = 0
    finished: int = 0
    timed_out: int = 0
    failed: int = 0
    last_solve_s: float | None = None
    #: Solves after which the free heap was handed back to the system.
    heap_released: int = 0


class ThreadPlanner:
    """Solves plan requests off the event loop.

    Parameters
    ----------
    site : SiteConfig
    solve : callable
        ``solve(problem) -> DispatchPlan``; blocking, run in the worker thread.
    forecaster : object
        With ``frozen()`` (a copy that no longer changes) and ``forecast(now) -> Forecast``.
    clock : Clock
        Monotonic time for the deadline; ``clock.track(future)`` is told of each solve (a
        manual clock in tests lets the solve finish before time moves on).
    """

    def __init__(self, site: SiteConfig, solve: Callable[[Any], Any], forecaster: Any,
                 clock: Clock) -> None:
        self.site, self._solve, self.forecaster, self.clock = site, solve, forecaster, clock
        self.deadline_s = plan_deadline_s(site)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="replan")
        self._future: concurrent.futures.Future | None = None
        self._started_s = 0.0
        self._abandoned = False
        self.stats = PlannerStats()
        self.fault: str | None = None

    def submit(self, request: PlanRequest) -> bool:
        """Forecast, build and solve ``request`` in the worker, unless a solve runs."""
        if self._future is not None:
            return False
        site, solve, forecaster = self.site, self._solve, self.forecaster.frozen()

        def job() -> FinishedPlan:
            try:
                forecast = forecaster.forecast(request.now)
                problem = build_problem(site, request.state, request.snapshot, forecast, request.now)
                return FinishedPlan(request, solve(problem))
            finally:
                if release_free_heap():
                    self.stats.heap_released += 1

        self._future = self._pool.submit(job)
        self.clock.track(self._future)
        self._started_s, self._abandoned = self.clock.monotonic(), False
        self.stats.started += 1
        return True

    def poll(self) -> FinishedPlan | None:
        """The finished plan (once), or None; abandons an overdue solve."""
        future, now_s = self._future, self.clock.monotonic()
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
            finished = future.result()
        except Exception as exc:  # a solver crash is a fault of planning only
            self.stats.failed += 1
            self.fault = f"solver failed: {type(exc).__name__}: {exc}"
            log.warning("re-plan failed error=%s", exc)
            return None
        self.stats.finished += 1
        self.fault = None
        return finished

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
