"""Compose a :class:`~gridctl.daemon.lifecycle.service.Daemon` from a validated site.

Production parts: drivers from :mod:`gridctl.devices`, the persistent HiGHS dispatcher, the
ledger (settlements, outbox, state table) and, when configured, the InfluxDB shipper
(:mod:`gridctl.daemon.lifecycle.shipping`). Tests replace any part (clock, driver factory,
solver, shipper) through keyword arguments.
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
from gridctl.daemon.lifecycle.guard import runtime_dir as default_runtime_dir
from gridctl.daemon.lifecycle.notify import Notifier
from gridctl.daemon.lifecycle.persist import LedgerStateStore
from gridctl.daemon.lifecycle.service import Daemon, Parts
from gridctl.daemon.lifecycle.shipping import Shipper, shipper_for
from gridctl.daemon.lifecycle.storage import STORAGE_ERRORS, StorageHealth, Store
from gridctl.daemon.stages.telemetry import TelemetryPoint
from gridctl.credentials import read_secret
from gridctl.ledger.book import SettlementBook
from gridctl.ledger.seal import key_from_text
from gridctl.ledger.store import Ledger
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.sinks.schema import telemetry_point

log = logging.getLogger(__name__)

PERIOD = dt.timedelta(minutes=30)


class LedgerPeriods:
    """The recorder's period sink: settles a closed period into the ledger through the book.

    A thin adapter over :class:`~gridctl.ledger.book.SettlementBook` (the same entry point as
    ``gridctl settle run`` and the simulator); ``last`` is the last settlement this process made
    (for status). A failed ledger write is noted in ``storage`` and raised: the recorder keeps
    the period pending and settles it on a later cycle.
    """

    def __init__(self, site: SiteConfig, ledger: Ledger, storage: StorageHealth | None = None) -> None:
        self.site, self.ledger = site, ledger
        self.storage = storage or StorageHealth(SystemClock())
        self.book = SettlementBook(site, ledger)
        self.last: PeriodSettlement | None = None

    def is_settled(self, start_utc: dt.datetime) -> bool:
        return bool(self.ledger.settlements(start_utc, start_utc + PERIOD))

    def settle(self, readings: PeriodReadings) -> None:
        try:
            settlement, result = self.book.settle(readings)
        except STORAGE_ERRORS as exc:
            self.storage.failed(Store.LEDGER, exc)
            raise
        self.storage.succeeded()
        self.last = settlement
        log.info("period settled start=%s outcome=%s revision=%s flags=%s",
                 readings.start_utc.isoformat(), result.outcome, result.revision,
                 ",".join(settlement.flags) or "-")


class LedgerTelemetry:
    """Telemetry into the ledger's outbox (line protocol), with a cached backlog count.

    With ``ship`` false (no InfluxDB configured) nothing is queued: rows nobody will ever send
    would only fill the disk. Settlements are still recorded (and queued) by the ledger itself;
    ``gridctl settle push`` can send them once InfluxDB is configured.

    A sample that cannot be written (a full disk) is dropped and counted in ``dropped``; the
    failure is noted in ``storage`` (status, rate-limited log), not raised: it would fault the
    record stage and log every cycle.
    """

    def __init__(self, site_id: str, ledger: Ledger, storage: StorageHealth,
                 ship: bool = True) -> None:
        self.site_id, self.ledger, self.storage, self.ship = site_id, ledger, storage, ship
        self._backlog = 0
        self.dropped = 0

    def enqueue_telemetry(self, points: list[TelemetryPoint]) -> None:
        if not self.ship:
            self.refresh()
            return
        lines = [telemetry_point(self.site_id, _device_of(p), p.at_utc, p.fields,
                                 p.tags.get("node", "")) for p in points]
        try:
            self.ledger.enqueue_telemetry(lines)
        except STORAGE_ERRORS as exc:
            self.dropped += len(lines)
            self.storage.failed(Store.OUTBOX, exc)
            return
        self.storage.succeeded()
        self.refresh()

    def refresh(self) -> int:
        self._backlog = self.ledger.outbox_backlog()[0]
        return self._backlog

    def backlog(self) -> int:
        return self._backlog


def _device_of(point: TelemetryPoint) -> str:
    """The ``device`` tag of a sample: its node, router link or ``switch/channel``, else
    ``controller``."""
    return point.tags.get("node") or point.tags.get("link") or point.tags.get("switch") or point.measurement


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
        try:
            month = SettlementBook(site, ledger).month_to_date_import_kwh(now)
        except Exception as exc:  # a first start must not fail on it: tiers start at the first
            log.error("month-to-date import not read from the ledger error=%s", exc)
            month = {}
        basis = {n.id: n.contract.contract_kw or 0.0 for n in site.nodes
                 if n.contract.demand_charge_jpy_per_kw_month > 0}
        return opening_billing(site, now, {k: float(v) for k, v in month.items()}, basis)

    return opening


def ledger_key(site: SiteConfig) -> bytes | None:
    """The key that seals the ledger: the credential ``storage.ledger_key_credential``, if set."""
    name = site.storage.ledger_key_credential
    key = key_from_text(read_secret(name, None)) if name else None
    if name and key is None:
        log.warning("ledger key credential is not set; the ledger is not sealed credential=%s", name)
    return key


def build_daemon(site: SiteConfig, *, clock: Clock | None = None,
                 factory=None, solve=None, notifier: Notifier | None = None,
                 socket_path: Path | None | str = "config", ledger_path: Path | None = None,
                 shipper: Shipper | None | str = "config",
                 runtime_dir: Path | None | str = "default") -> tuple[Daemon, Ledger]:
    """A ready-to-run daemon and its ledger.

    Parameters
    ----------
    socket_path : Path, None or ``"config"``
        Operator socket; ``"config"`` takes ``control.socket_path``, None disables it.
    ledger_path : Path or None
        Overrides ``storage.ledger_path``.
    shipper : Shipper, None or ``"config"``
        Outbox shipper (:class:`~gridctl.daemon.lifecycle.shipping.Shipper`); ``"config"``
        ships to ``storage.influxdb`` when configured; None ships nothing.
    runtime_dir : Path, None or ``"default"``
        Folder of the site lock (:func:`~gridctl.daemon.lifecycle.guard.runtime_dir` by
        default); None takes no site or ledger lock (tests only).
    """
    clock = clock or SystemClock()
    ledger_path = Path(ledger_path or site.storage.ledger_path)
    ledger = Ledger(ledger_path, site.site.id, clock=clock.now, key=ledger_key(site))
    if shipper == "config":
        shipper = shipper_for(site, ledger_path, clock.now)
    # Telemetry is queued only for a sink: InfluxDB configured (rows wait for a missing
    # credential or an outage), or a shipper given by the caller.
    ships = site.storage.influxdb is not None or shipper is not None
    storage = StorageHealth(clock)
    telemetry = LedgerTelemetry(site.site.id, ledger, storage, ship=ships)
    telemetry.refresh()
    parts = Parts(
        site=site, factory=factory or default_factory,
        solve=solve or default_solver(), store=LedgerStateStore(ledger),
        periods=LedgerPeriods(site, ledger, storage), telemetry_sink=telemetry, clock=clock,
        notifier=notifier or Notifier(),
        socket_path=site.control.socket_path if socket_path == "config" else socket_path,
        shipper=shipper, opening=opening_for(site, ledger), storage=storage, ledger_path=ledger_path,
        runtime_dir=default_runtime_dir() if runtime_dir == "default" else runtime_dir)
    return Daemon(parts), ledger
