"""Ship the ledger's outbox to InfluxDB: batches, backoff, backlog size and age, health check.

A row leaves the outbox only after the transport returned, i.e. after HTTP 204 for the batch
holding it. If the process dies between the 204 and the delete, the batch is sent again on the
next start; points have deterministic series and timestamps, so InfluxDB overwrites them and
nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from gridctl.sinks.schema import health_point
from gridctl.sinks.transports import SinkError, Transport

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """What the shipper needs from the ledger."""

    def outbox_peek(self, limit: int) -> list[tuple[int, str]]: ...

    def outbox_delete(self, ids: list[int]) -> None: ...

    def outbox_backlog(self) -> tuple[int, dt.datetime | None]: ...

    def outbox_reject(self, row_id: int, reason: str) -> None: ...


@dataclass(frozen=True)
class ShipperStatus:
    """Backlog and health of the shipper.

    Attributes
    ----------
    backlog_rows : int
        Points waiting in the outbox.
    oldest_age_s : float or None
        Age of the oldest waiting point [s].
    shipped_rows : int
        Points acknowledged since start.
    consecutive_failures : int
    last_error : str or None
        The last failure, one line (the server's answer included).
    retry_in_s : float
        Current backoff delay [s] (0 when healthy).
    last_status : int or None
        HTTP status of the last failure (None: no answer, e.g. connection refused).
    failing_since_utc : datetime or None
        Start of the current run of failures.
    rejected : str or None
        ``"rejected: 401 unauthorized"`` while InfluxDB refuses the credentials or the target
        (401, 403, 404): waiting does not help, a configuration change does; retried only at
        the longest back-off.
    """

    backlog_rows: int
    oldest_age_s: float | None
    shipped_rows: int
    consecutive_failures: int
    last_error: str | None
    retry_in_s: float
    last_status: int | None = None
    failing_since_utc: dt.datetime | None = None
    rejected: str | None = None


#: HTTP statuses that mean the credentials or the target are wrong, not that InfluxDB is busy.
REJECTED_STATUSES = frozenset({401, 403, 404})


def rejection(status: int | None) -> str | None:
    """``"rejected: 401 unauthorized"`` for a status of :data:`REJECTED_STATUSES`, else None."""
    if status not in REJECTED_STATUSES:
        return None
    return f"rejected: {status} {http.HTTPStatus(status).phrase.lower()}"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class OutboxShipper:
    """Sends the outbox in batches of ``batch_size`` with exponential backoff on failure.

    Parameters
    ----------
    outbox : Outbox
        Usually the :class:`gridctl.ledger.Ledger`.
    transport : Transport
    batch_size : int
        Points per HTTP request.
    backoff_initial_s, backoff_max_s : float
        First and largest retry delay [s]; the delay doubles per consecutive failure, and a
        random jitter takes up to half of it off (many boxes do not retry in step). A rejection
        (401, 403, 404) waits ``backoff_max_s`` at once.
    idle_s : float
        Poll interval when the outbox is empty [s].
    rng : random.Random, optional
        Source of the jitter (seeded in tests).
    """

    def __init__(
        self, outbox: Outbox, transport: Transport, batch_size: int = 5000,
        backoff_initial_s: float = 1.0, backoff_max_s: float = 300.0, idle_s: float = 5.0,
        clock: Callable[[], dt.datetime] = _utc_now, rng: random.Random | None = None,
    ) -> None:
        self._outbox, self._transport = outbox, transport
        self.batch_size = batch_size
        self._initial, self._max, self._idle = backoff_initial_s, backoff_max_s, idle_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._shipped = 0
        self._failures = 0
        self._last_error: str | None = None
        self._last_status: int | None = None
        self._failing_since: dt.datetime | None = None
        self._delay_s = 0.0
        self.rejected_rows = 0

    def _failed(self, error: str, status: int | None = None) -> None:
        """Count a failure and draw the next delay: doubling, capped, with jitter."""
        self._failures += 1
        self._last_error, self._last_status = error, status
        if self._failing_since is None:
            self._failing_since = self._clock()
        if rejection(status) is not None:
            self._delay_s = self._max
            return
        nominal = min(self._max, self._initial * 2 ** (self._failures - 1))
        self._delay_s = nominal * (1.0 - 0.5 * self._rng.random())

    def _succeeded(self) -> None:
        self._failures, self._last_error, self._last_status = 0, None, None
        self._failing_since, self._delay_s = None, 0.0

    def ship_once(self) -> int:
        """Send the oldest batch; returns how many rows were acknowledged (0: outbox empty).

        Raises
        ------
        SinkError
            The server did not answer 204; the rows stay in the outbox.
        """
        rows = self._outbox.outbox_peek(self.batch_size)
        if not rows:
            return 0
        try:
            self._transport.write([line for _, line in rows])
        except SinkError as exc:
            if exc.status != 400:
                self._failed(str(exc), exc.status)
                raise
            self._one_by_one(rows)  # a malformed line must not block the outbox forever
        else:
            self._outbox.outbox_delete([row_id for row_id, _ in rows])
        self._succeeded()
        self._shipped += len(rows)
        return len(rows)

    def _one_by_one(self, rows: list[tuple[int, str]]) -> None:
        """After HTTP 400 on a batch: send each row alone; park the ones refused as malformed.

        Re-sending the good rows is harmless (same series and time: they overwrite).
        """
        for row_id, line in rows:
            try:
                self._transport.write([line])
            except SinkError as exc:
                if exc.status != 400:
                    self._failed(str(exc), exc.status)
                    raise
                log.error("outbox row rejected by the server row_id=%d error=%s", row_id, exc)
                self._outbox.outbox_reject(row_id, str(exc))
                self.rejected_rows += 1
            else:
                self._outbox.outbox_delete([row_id])

    def drain(self) -> int:
        """Ship until the outbox is empty; returns rows shipped (raises :class:`SinkError`)."""
        total = 0
        while (sent := self.ship_once()) > 0:
            total += sent
        return total

    def retry_delay_s(self) -> float:
        """Delay before the next attempt after the current run of failures [s] (0: none)."""
        return self._delay_s if self._failures else 0.0

    async def run(self, stop: asyncio.Event,
                  offload: Callable[[Callable[[], int]], Awaitable[int]] | None = None) -> None:
        """Ship until ``stop`` is set; never raises (cancellation aside).

        Batch follows batch while rows wait; an empty outbox is polled every ``idle_s``; after
        a failure the next attempt waits :meth:`retry_delay_s`. The first failure of a run of
        failures is logged as a warning, the recovery as info.

        Parameters
        ----------
        stop : asyncio.Event
        offload : callable, optional
            ``await offload(fn)`` runs one round ``fn`` off the event loop and returns its
            result; :func:`asyncio.to_thread` by default. A caller whose outbox connection
            belongs to one thread passes a function that runs ``fn`` on that thread.
        """
        offload = offload or asyncio.to_thread
        failing: str | None = None  # the kind of the current run of failures, logged once
        while not stop.is_set():
            try:
                sent = await offload(self.ship_once)
            except Exception as exc:  # the sink, or the outbox itself (SQLite busy): same back-off
                if not isinstance(exc, SinkError):  # ship_once counted sink errors already
                    self._failed(f"{type(exc).__name__}: {exc}")
                failing = self._log_failure(failing)
                delay = self.retry_delay_s()
            else:
                if failing:
                    log.info("outbox shipping recovered shipped_rows=%d", self._shipped)
                failing = None
                delay = 0.0 if sent else self._idle
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass

    def _log_failure(self, failing: str | None) -> str:
        """Log a run of failures once (again only when it turns into a rejection or back)."""
        kind = rejection(self._last_status) or "failing"
        if kind == failing:
            log.debug("outbox shipping %s error=%s retry_in_s=%.1f", kind, self._last_error,
                      self._delay_s)
        elif kind == "failing":
            log.warning("outbox shipping failing, rows kept error=%s retry_in_s=%.1f",
                        self._last_error, self._delay_s)
        else:
            log.error("outbox shipping %s: fix the credentials or the database in the site file "
                      "or credential and restart; rows kept, retried every %.0f s error=%s",
                      kind, self._max, self._last_error)
        return kind

    def status(self, backlog: tuple[int, dt.datetime | None] | None = None) -> ShipperStatus:
        """Backlog size and age, and the failure state.

        ``backlog`` is the outbox's ``(rows, oldest creation time)`` when the caller already
        has it (read on the thread the outbox belongs to); by default it is read here.
        """
        count, oldest = self._outbox.outbox_backlog() if backlog is None else backlog
        age = (self._clock() - oldest).total_seconds() if oldest is not None else None
        return ShipperStatus(count, age, self._shipped, self._failures, self._last_error,
                             self.retry_delay_s(), self._last_status, self._failing_since,
                             rejection(self._last_status) if self._failures else None)


@dataclass(frozen=True)
class HealthResult:
    """Outcome of :func:`health_check`: ``ok`` only when a write was acknowledged."""

    ok: bool
    detail: str
    nonce: str


def health_check(transport: Transport, site_id: str, at_utc: dt.datetime | None = None) -> HealthResult:
    """Prove the sink accepts writes: write one ``gridctl_health`` point and require HTTP 204.

    A ping or version call proves nothing here: InfluxDB 1.6 answers them while refusing the
    2.x write API, so only an acknowledged write counts.
    """
    nonce = uuid.uuid4().hex
    at = at_utc or _utc_now()
    try:
        transport.write([health_point(site_id, nonce, at)])
    except SinkError as exc:
        return HealthResult(False, str(exc), nonce)
    return HealthResult(True, f"{transport.description}: write acknowledged (204)", nonce)
