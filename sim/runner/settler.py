"""Settlement of a simulated run: every JST half-hour settled from the plant's counters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np

from gridctl.config import SiteConfig
from gridctl.settlement.readings_csv import period_readings
from gridctl.settlement.timing import fixed_point_channels
from sim.plant.block import PlantState
from sim.runner.bridge import Bridge

__all__ = ["Settler"]


class Settler:
    """Settles each JST half-hour from the plant's cumulative counters into a ledger, as it goes.

    Every period goes through :class:`gridctl.ledger.SettlementBook`, the daemon's entry point:
    the month-to-date import that picks tiered prices is folded from the ledger. ``prior_kwh``
    (the import earlier in the start's month, estimated from the profiles) is recorded as the
    ledger's opening balance, so ``gridctl settle verify --config`` reproduces every period of
    a run that starts mid-month. ``settlements`` (the run's ``(readings, settlement)`` pairs)
    owns the ledger: ``ledger_path``, or a temporary file that
    :func:`sim.runner.outputs.write_ledger` moves into the output folder. The ledger is not
    fsynced (a run can be made again) and its entry times are simulated time.

    A grid meter that keeps fixed 30-minute counters (a smart meter,
    :func:`gridctl.settlement.timing.fixed_point_channels`) is modelled exactly: its fixed
    value at a boundary is the plant's counter at the boundary, what the daemon records from
    the meter's 0xEA/0xEB, so such channels are marked as read from the fixed point.
    """

    def __init__(self, site: SiteConfig, bridge: Bridge, state: PlantState, start: dt.datetime,
                 prior_kwh: np.ndarray, ledger_path=None) -> None:
        from gridctl.ledger import SettlementBook
        from sim.runner.outputs import LedgerSettlements

        self.site, self.bridge = site, bridge
        self.fixed_point = frozenset(fixed_point_channels(site))
        self.period_start = start
        self.at_start = bridge.counters(state)
        now = self._now = [start]  # the ledger's clock; it must not hold the settler or the list
        self.settlements = LedgerSettlements(site.site.id, lambda: now[0], ledger_path)
        self.book = SettlementBook(site, self.settlements.ledger)
        if np.any(np.asarray(prior_kwh) > 0):
            self.book.record_opening_month_import(
                start, {n: Decimal(f"{v:.6f}") for n, v in zip(bridge.node_ids, prior_kwh)},
                source="simulation: max(load - pv, 0) of the profiles before the start")

    def maybe_settle(self, now: dt.datetime, state: PlantState) -> None:
        if (now - self.period_start).total_seconds() < 1800 - 1e-6:
            return
        at_end = self.bridge.counters(state)
        readings = period_readings(self.period_start, self.at_start, at_end, self.fixed_point)
        self._now[0] = now
        settlement, _ = self.book.settle(readings)
        self.settlements.append((readings, settlement))
        self.period_start, self.at_start = now, at_end
