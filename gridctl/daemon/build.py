"""Compose a :class:`~gridctl.daemon.service.Daemon` from a validated site.

Production parts: drivers from :mod:`gridctl.devices`, the persistent HiGHS dispatcher, the
ledger (settlements, outbox, state table) and, when configured, the InfluxDB shipper. Tests
replace any part (clock, driver factory, solver) through keyword arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from gridctl.config import SiteConfig
from gridctl.controller import opening_billing
from gridctl.controller.types import BillingState
from gridctl.daemon.clock import Clock, SystemClock
from gridctl.daemon.notify import Notifier
from gridctl.daemon.persist import LedgerStateStore
from gridctl.daemon.service import Daemon, Parts
from gridctl.daemon.telemetry import TelemetryPoint
from gridctl.ledger.book import SettlementBook
from gridctl.ledger.store import Ledger
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.sinks.schema import telemetry_point

log = logging.getLogger(__name__)

PERIOD = dt.timedelta(minutes=30)


class LedgerPeriods:
    """The recorder's period sink: settles a closed period into the ledger through the book.

    A thin adapter over :class:`~gridctl.ledger.book.SettlementBook` (the same entry point as
    ``gridctl settle run`` and the simulator); ``last`` is the last settlement this process made
    (for status).
    """

    def __init__(self, site: SiteConfig, ledger: Ledger) -> None:
        self.site, self.ledger = site, ledger
        self.book = SettlementBook(site, ledger)
        self.last: PeriodSettlement | None = None

    def is_settled(self, start_utc: dt.datetime) -> bool:
        return bool(self.ledger.settlements(start_utc, start_utc + PERIOD))

    def settle(self, readings: PeriodReadings) -> None:
        settlement, result = self.book.settle(readings)
        self.last = settlement
        log.info("period settled start=%s outcome=%s revision=%s flags=%s",
                 readings.start_utc.isoformat(), result.outcome, result.revision,
                 ",".join(settlement.flags) or "-")


class LedgerTelemetry:
    """Telemetry into the ledger's outbox (line protocol), with a cached backlog count."""

    def __init__(self, site_id: str, ledger: Ledger) -> None:
        self.site_id, self.ledger = site_id, ledger
        self._backlog = 0

    def enqueue_telemetry(self, points: list[TelemetryPoint]) -> None:
        lines = [telemetry_point(self.site_id, p.tags.get("node", p.measurement), p.at_utc,
                                 p.fields, p.tags.get("node", "")) for p in points]
        self.ledger.enqueue_telemetry(lines)
        self.refresh()

    def refresh(self) -> int:
        self._backlog = self.ledger.outbox_backlog()[0]
        return self._backlog

    def backlog(self) -> int:
        return self._backlog


class BackgroundShipper:
    """The ledger's outbox shipped to InfluxDB from one worker thread with its own connection.

    SQLite connections belong to the thread that opened them, so the worker opens a second
    :class:`Ledger` on the same WAL file; the event loop never waits on the network.
    """

    def __init__(self, ledger_path: Path, site_id: str, transport, batch_size: int,
                 max_batches: int = 20) -> None:
        import concurrent.futures

        self.ledger_path, self.site_id = Path(ledger_path), site_id
        self.transport, self.batch_size, self.max_batches = transport, batch_size, max_batches
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._shipper = None

    def _ship(self) -> int:
        from gridctl.sinks.shipper import OutboxShipper

        if self._shipper is None:
            self._shipper = OutboxShipper(Ledger(self.ledger_path, self.site_id), self.transport,
                                          self.batch_size)
        total = 0
        for _ in range(self.max_batches):
            sent = self._shipper.ship_once()
            total += sent
            if sent < self.batch_size:
                break
        return total

    async def ship_once(self) -> int:
        """Ship up to ``max_batches`` batches; raises the sink's error when InfluxDB refuses."""
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._pool, self._ship)


def shipper_for(site: SiteConfig, ledger_path: Path) -> BackgroundShipper | None:
    """The outbox shipper of ``storage.influxdb``, or None (not configured / no credential)."""
    config = site.storage.influxdb
    if config is None:
        return None
    from gridctl.sinks.transports import SinkError, transport_from_config

    try:
        transport = transport_from_config(config)
    except SinkError as exc:  # control goes on; rows wait in the outbox for a fixed credential
        log.error("InfluxDB shipping disabled error=%s", exc)
        return None
    return BackgroundShipper(ledger_path, site.site.id, transport, site.storage.outbox_batch_size)


def default_factory(site: SiteConfig, device_id: str) -> Any:
    """An unconnected driver for ``device_id`` built by :mod:`gridctl.devices`."""
    from gridctl.devices import build_binding

    node, device = next((n, d) for n, d in site.all_devices() if d.id == device_id)
    return build_binding(site, node, device).driver


def default_solver():
    """A persistent HiGHS dispatcher's ``solve`` (model built once, updated in place)."""
    from optimizer.dispatcher import Dispatcher

    return Dispatcher().solve


def opening_for(site: SiteConfig, ledger: Ledger):
    """The billing context of a first start at ``now``: the month-to-date import of each member
    folded from the ledger (settled periods and the month's opening balance), and for members
    with a demand charge the contracted demand of their contract (``contract_kw``)."""
    def opening(now: dt.datetime) -> BillingState:
        from gridctl.ledger import SettlementBook

        try:
            month = SettlementBook(site, ledger).month_to_date_import_kwh(now)
        except Exception as exc:  # a first start must not fail on it: tiers start at the first
            log.error("month-to-date import not read from the ledger error=%s", exc)
            month = {}
        basis = {n.id: n.contract.contract_kw or 0.0 for n in site.nodes
                 if n.contract.demand_charge_jpy_per_kw_month > 0}
        return opening_billing(site, now, {k: float(v) for k, v in month.items()}, basis)

    return opening


def build_daemon(site: SiteConfig, *, clock: Clock | None = None,
                 factory=None, solve=None, notifier: Notifier | None = None,
                 socket_path: Path | None | str = "config", ledger_path: Path | None = None,
                 shipper="config") -> tuple[Daemon, Ledger]:
    """A ready-to-run daemon and its ledger.

    Parameters
    ----------
    socket_path : Path, None or ``"config"``
        Operator socket; ``"config"`` takes ``control.socket_path``, None disables it.
    ledger_path : Path or None
        Overrides ``storage.ledger_path``.
    shipper : object, None or ``"config"``
        Outbox shipper with ``async ship_once()``; ``"config"`` ships to ``storage.influxdb``
        when configured; None ships nothing.
    """
    clock = clock or SystemClock()
    ledger_path = Path(ledger_path or site.storage.ledger_path)
    ledger = Ledger(ledger_path, site.site.id, clock=clock.now)
    if shipper == "config":
        shipper = shipper_for(site, ledger_path)
    telemetry = LedgerTelemetry(site.site.id, ledger)
    telemetry.refresh()
    parts = Parts(
        site=site, factory=factory or default_factory,
        solve=solve or default_solver(), store=LedgerStateStore(ledger),
        periods=LedgerPeriods(site, ledger), telemetry_sink=telemetry, clock=clock,
        notifier=notifier or Notifier(),
        socket_path=site.control.socket_path if socket_path == "config" else socket_path,
        shipper=shipper, opening=opening_for(site, ledger))
    return Daemon(parts), ledger
