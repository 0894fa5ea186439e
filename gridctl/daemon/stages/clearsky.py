"""The clear-sky PV table of the daemon's forecasts, computed in a short-lived child process.

The clear sky (pvlib's solar position and Solis model) needs pandas, pvlib and the scipy parts
pvlib loads: about 120 MB resident that a daemon would carry for a computation it needs once
a day.  :class:`ClearSkySource` keeps one :class:`~gridctl.forecast.ClearSkyTable` covering
the plan horizon a few days ahead, and builds the next one in a spawned child process (which
exits when done), so the daemon never imports them.  The forecast made from the table is the
one made without it (:func:`gridctl.forecast.make_forecast`; the simulator plans from such a
table too).  Should the child fail, the forecast computes the clear sky itself, as before:
control never waits on this.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable

from gridctl.config import SiteConfig
from gridctl.forecast import ClearSkyTable
from gridctl.forecast.pv import RECENT_BINS

log = logging.getLogger(__name__)

#: Days a new table reaches beyond the plan horizon [days]: one child process per this many days.
DAYS_AHEAD = 2
#: Days a new table reaches back (the recent clear-sky ratio looks back ``RECENT_BINS``) [days].
DAYS_BEHIND = 1
#: Longest wait for the child process [s]; it takes a few seconds (mostly its imports).
CHILD_TIMEOUT_S = 120.0
#: After a failed child, the wait before the next try [s] (meanwhile forecasts compute in-process).
RETRY_AFTER_S = 3600.0

#: ``(site, start_utc, end_utc, bin_s) -> ClearSkyTable``
TableBuilder = Callable[[SiteConfig, dt.datetime, dt.datetime, int], ClearSkyTable]


#: The child: arguments pickled on stdin, the table pickled on stdout.
_CHILD = ("import pickle, sys; from gridctl.forecast import ClearSkyTable; "
          "args = pickle.load(sys.stdin.buffer); "
          "pickle.dump(ClearSkyTable.build(*args), sys.stdout.buffer)")


def build_in_child(site: SiteConfig, start_utc: dt.datetime, end_utc: dt.datetime,
                   bin_s: int) -> ClearSkyTable:
    """:meth:`ClearSkyTable.build` run by a fresh Python process (pvlib loads there only).

    A plain subprocess rather than multiprocessing's spawn, which would re-import the
    caller's main script.  The child sees this process's ``sys.path``.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                          timeout=CHILD_TIMEOUT_S, check=False,
                          input=pickle.dumps((site, start_utc, end_utc, bin_s)))
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise RuntimeError(f"clear-sky child exited {done.returncode}: {lines[-1]}")
    table = pickle.loads(done.stdout)
    if not isinstance(table, ClearSkyTable):
        raise TypeError(f"clear-sky child returned {type(table).__name__}")
    return table


class ClearSkySource:
    """One clear-sky table for the daemon's forecasts, renewed every ``DAYS_AHEAD`` days.

    Holds at most one table: nodes x ``(DAYS_BEHIND + DAYS_AHEAD) days + horizon`` bins of
    one float each (100 homes: about 0.3 MB).  Called from the planner's worker thread only.

    Parameters
    ----------
    site : SiteConfig
    build : callable, optional
        Builds a table (default :func:`build_in_child`); tests inject a failing one.
    """

    def __init__(self, site: SiteConfig, build: TableBuilder = build_in_child) -> None:
        self.site, self._build = site, build
        self.bin_s = int(site.control.plan_step_min * 60)
        self.horizon = dt.timedelta(hours=site.control.horizon_h)
        self.table: ClearSkyTable | None = None
        self.builds = 0
        self.failures = 0
        self._failed_at: dt.datetime | None = None

    def _covers(self, start_utc: dt.datetime, end_utc: dt.datetime) -> bool:
        t = self.table
        if t is None:
            return False
        first = t.first_bin * t.bin_s
        last = (t.first_bin + t.kw.shape[1]) * t.bin_s
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return first <= (start_utc - epoch).total_seconds() and (end_utc - epoch).total_seconds() <= last

    def table_for(self, now: dt.datetime) -> ClearSkyTable | None:
        """A table covering the recent-ratio bins and the horizon from ``now``; None if unavailable."""
        # Generous on both sides: the plan starts at the step holding ``now``.
        start = now - dt.timedelta(seconds=(RECENT_BINS + 2) * self.bin_s)
        end = now + self.horizon + dt.timedelta(seconds=2 * self.bin_s)
        if self._covers(start, end):
            return self.table
        if self._failed_at is not None and (now - self._failed_at).total_seconds() < RETRY_AFTER_S:
            return None
        try:
            table = self._build(self.site, now - dt.timedelta(days=DAYS_BEHIND),
                                end + dt.timedelta(days=DAYS_AHEAD), self.bin_s)
        except Exception as exc:  # the forecast computes the clear sky itself meanwhile
            self.failures += 1
            self._failed_at = now
            log.warning("clear-sky table not built, computing in-process error=%s: %s",
                        type(exc).__name__, exc)
            return None
        self.table, self._failed_at = table, None
        self.builds += 1
        return table
