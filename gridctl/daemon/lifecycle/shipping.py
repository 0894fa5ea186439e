"""The ledger's outbox shipped to InfluxDB while the daemon controls: the sink's own loop.

:meth:`gridctl.sinks.OutboxShipper.run` is the one loop (batch after batch while rows wait,
an idle poll when the outbox is empty, exponential back-off while InfluxDB refuses, never
raising). The daemon only gives it a thread: SQLite connections belong to the thread that
opened them, so every round runs on one worker thread holding the shipper's own
:class:`~gridctl.ledger.store.Ledger` connection to the same WAL file, and the event loop never
waits on the network. The outbox backlog is read on that thread after each round, so the
status document gets the sink's :class:`~gridctl.sinks.ShipperStatus` without touching the
worker's connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gridctl.config import SiteConfig
from gridctl.ledger.store import Ledger
from gridctl.sinks.shipper import OutboxShipper, ShipperStatus
from gridctl.sinks.transports import SinkError, Transport, transport_from_config

log = logging.getLogger(__name__)

#: Most batches sent at shutdown [-] (the rest waits in the outbox for the next start).
FLUSH_BATCHES = 20


class Shipper(Protocol):
    """What the daemon needs from an outbox shipper."""

    async def run(self, stop: asyncio.Event) -> None:
        """Ship in the background until ``stop`` is set; never raises."""

    async def flush(self) -> int:
        """Ship what fits into one last round (shutdown); raises when the sink refuses."""

    def status(self) -> ShipperStatus | None:
        """Backlog and health, None before the first round."""

    def close(self) -> None:
        """Release the worker and its connection."""


class _WorkerOutbox:
    """The ledger's outbox as :class:`OutboxShipper` sees it, opened by the first thread that
    uses it (the worker: every call is made there)."""

    def __init__(self, path: Path, site_id: str, clock: Callable[[], dt.datetime]) -> None:
        self.path, self.site_id, self.clock = path, site_id, clock
        self.ledger: Ledger | None = None

    def _open(self) -> Ledger:
        if self.ledger is None:
            self.ledger = Ledger(self.path, self.site_id, clock=self.clock)
        return self.ledger

    def outbox_peek(self, limit: int) -> list[tuple[int, str]]:
        return self._open().outbox_peek(limit)

    def outbox_delete(self, ids: list[int]) -> None:
        self._open().outbox_delete(ids)

    def outbox_backlog(self) -> tuple[int, dt.datetime | None]:
        return self._open().outbox_backlog()

    def outbox_reject(self, row_id: int, reason: str) -> None:
        self._open().outbox_reject(row_id, reason)

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None


class BackgroundShipper:
    """:class:`OutboxShipper` run by the daemon, every round on one worker thread.

    Parameters
    ----------
    ledger_path : Path
        The daemon's ledger file; the worker opens its own connection to it.
    site_id : str
    transport : Transport
    batch_size : int
        Points per HTTP request.
    clock : callable
        Wall clock (tz-aware UTC) for the age of the oldest waiting row.
    idle_s : float
        Poll interval when the outbox is empty [s].
    backoff_initial_s, backoff_max_s : float
        First and largest retry delay after failures [s] (doubling), as in the sink.
    """

    def __init__(self, ledger_path: Path, site_id: str, transport: Transport, batch_size: int,
                 clock: Callable[[], dt.datetime], idle_s: float = 5.0,
                 backoff_initial_s: float = 5.0, backoff_max_s: float = 300.0) -> None:
        self._outbox = _WorkerOutbox(Path(ledger_path), site_id, clock)
        self.shipper = OutboxShipper(self._outbox, transport, batch_size,
                                     backoff_initial_s=backoff_initial_s,
                                     backoff_max_s=backoff_max_s, idle_s=idle_s, clock=clock)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._backlog: tuple[int, dt.datetime | None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """The sink's loop (:meth:`OutboxShipper.run`) until ``stop`` is set; never raises."""
        await self.shipper.run(stop, offload=self._in_worker)

    async def flush(self) -> int:
        """Up to :data:`FLUSH_BATCHES` batches now (shutdown); raises the sink's error."""
        def batches() -> int:
            total = 0
            for _ in range(FLUSH_BATCHES):
                sent = self.shipper.ship_once()
                total += sent
                if sent < self.shipper.batch_size:
                    break
            return total

        return await self._in_worker(batches)

    def status(self) -> ShipperStatus | None:
        """The sink's status with the backlog read after the last round (None before it)."""
        if self._backlog is None:
            return None
        return self.shipper.status(self._backlog)

    def close(self) -> None:
        """Close the worker's connection (after any round still running) and the worker."""
        with contextlib.suppress(RuntimeError):  # closed already
            self._pool.submit(self._outbox.close)
        self._pool.shutdown(wait=False)

    async def _in_worker(self, fn: Callable[[], int]) -> int:
        """Run ``fn`` on the worker thread, then read the backlog there."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._round, fn)

    def _round(self, fn: Callable[[], int]) -> int:
        try:
            return fn()
        finally:
            try:
                self._backlog = self._outbox.outbox_backlog()
            except Exception as exc:  # the round's own error says why; status keeps the last
                log.debug("outbox backlog not read error=%s", exc)


def shipper_for(site: SiteConfig, ledger_path: Path, clock: Callable[[], dt.datetime],
                **options: float) -> BackgroundShipper | None:
    """The outbox shipper of ``storage.influxdb``, or None (not configured / no credential).

    It polls an empty outbox once per poll period (at least every 5 s); ``options`` override
    :class:`BackgroundShipper`'s back-off (``backoff_initial_s``, ``backoff_max_s``).
    """
    config = site.storage.influxdb
    if config is None:
        return None
    try:
        transport = transport_from_config(config)
    except SinkError as exc:  # control goes on; rows wait in the outbox for a fixed credential
        log.error("InfluxDB shipping disabled error=%s", exc)
        return None
    options.setdefault("idle_s", max(5.0, site.control.poll_period_s))
    return BackgroundShipper(ledger_path, site.site.id, transport, site.storage.outbox_batch_size,
                             clock, **options)
