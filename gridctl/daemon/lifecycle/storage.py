"""Storage health: ledger and outbox writes that fail (a full disk) without flooding the log.

A full disk (ENOSPC, EDQUOT, EFBIG; SQLite's "database or disk is full" or a write I/O error)
fails every ledger write of every cycle. Control does not depend on them: setpoints are still
written and the watchdog kicked, a period that could not be settled stays pending and is
settled on a later cycle, the state is persisted again once a write succeeds. What changes:
``status`` shows ``storage_error`` (health ``degraded``), and the log gets one line when the
failure starts, then at most one every five minutes (with the count of repeats), and one when
writes succeed again.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from datetime import UTC, datetime
from enum import Enum

from gridctl.daemon.clock import Clock
from gridctl.daemon.lifecycle.ratelog import DEFAULT_INTERVAL_S, RateLimitedLog
from gridctl.ledger.files import LedgerError

log = logging.getLogger(__name__)

#: Errors of a ledger or outbox write (anything else is a bug and takes its usual path).
STORAGE_ERRORS = (LedgerError, sqlite3.Error, OSError)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Store(str, Enum):
    """What a failed write was for."""

    LEDGER = "ledger"
    OUTBOX = "outbox"


def reason_of(exc: BaseException) -> str:
    """A short reason: ``No space left on device`` for a full disk, else the error's text."""
    for err in (exc, exc.__cause__):
        if isinstance(err, OSError) and err.errno in _NO_SPACE:
            return os.strerror(err.errno)
        if isinstance(err, sqlite3.Error) and getattr(err, "sqlite_errorname", "") == "SQLITE_FULL":
            return os.strerror(errno.ENOSPC)
    return str(exc)


class StorageHealth:
    """The state of the daemon's storage writes, shared by the ledger adapters and the service.

    Parameters
    ----------
    clock : Clock
        Wall time for ``since``; monotonic time for the log rate limit.
    log_every_s : float
        At most one line per this interval while writes keep failing [s].
    """

    def __init__(self, clock: Clock, log_every_s: float = DEFAULT_INTERVAL_S) -> None:
        self.clock = clock
        self.ratelog = RateLimitedLog(log, log_every_s, clock.monotonic)
        self.since_utc: datetime | None = None
        self.store: Store | None = None
        self.reason: str | None = None
        self.failures = 0

    @property
    def error(self) -> str | None:
        """``"ledger: No space left on device since 2026-08-03T02:40:01Z"`` or None when writes work."""
        if self.since_utc is None:
            return None
        since = self.since_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.store.value}: {self.reason} since {since}"

    def failed(self, store: Store, exc: BaseException) -> None:
        """A write to ``store`` failed with ``exc`` (kept to be retried by the caller)."""
        reason = reason_of(exc)
        if self.since_utc is None:
            self.since_utc = self.clock.now()
        self.store, self.reason = store, reason
        self.failures += 1
        self.ratelog.log("failing", logging.ERROR,
                         "storage write failed, control goes on and the write is retried "
                         "store=%s error=%s since=%s failures=%d", store.value, reason,
                         self.since_utc.isoformat(), self.failures)

    def succeeded(self) -> None:
        """A write succeeded: storage works again."""
        if self.since_utc is None:
            return
        self.ratelog.log("recovered", logging.WARNING,
                         "storage writes succeed again since=%s failures=%d",
                         self.since_utc.isoformat(), self.failures)
        self.since_utc, self.store, self.reason, self.failures = None, None, None, 0
